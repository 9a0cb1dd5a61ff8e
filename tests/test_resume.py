"""Exact resume: 2 epochs straight equal 1 epoch, then a resume from its ``last.ckpt``, in
metrics (to 1e-6), weights, CSV history and W&B run; the resumed fit continues the same
run directory."""

import csv
import math
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from netscope.main import main
from tests.helpers import CONFIGS, SHARED_DATA, metrics, requires_shared, run
from tests.image_folders import make_class_folder

TOLERANCE = 1e-6


class StopFreshFitAfterOneEpoch(Callback):
    """Stop a fit that did not start from a checkpoint after its first epoch: a 2-epoch
    fit stopped half way, as an interruption would (a 1-epoch fit would be another fit:
    schedules such as Lookahead's are laid out over the whole fit)."""

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.ckpt_path is None:
            trainer.should_stop = True


def resume_pair(args: list[str], tmp_path: Path) -> tuple[Path, Path]:
    """Run ``args`` for 2 epochs straight, and stopped after 1 then resumed with the
    command a user types (the run's own config.yaml and last.ckpt)."""
    straight = run("fit", *args, "--trainer.max_epochs", "2", root=tmp_path / "straight")
    stopper = tmp_path / "stop.yaml"
    stopper.write_text("trainer:\n  callbacks+:\n    - class_path: tests.test_resume.StopFreshFitAfterOneEpoch\n")
    first = run("fit", *args, "--trainer.max_epochs", "2", "--config", str(stopper),
                root=tmp_path / "resumed")
    assert metrics(first)["epoch"] == 1
    before = set((tmp_path / "resumed").iterdir())
    from netscope.main import main
    main(["fit", "--config", str(first / "config.yaml"),
          "--ckpt_path", str(first / "checkpoints" / "last.ckpt")])
    assert set((tmp_path / "resumed").iterdir()) == before  # the same run directory
    return straight, first


def assert_same_run(straight: Path, resumed: Path) -> None:
    a, b = metrics(straight), metrics(resumed)
    assert a["status"] == b["status"] == "completed"
    scalars = {k for k, v in a.items() if isinstance(v, float) and "/" in k}
    assert scalars and scalars == {k for k, v in b.items() if isinstance(v, float) and "/" in k}
    for name in scalars:
        assert math.isclose(a[name], b[name], rel_tol=0, abs_tol=TOLERANCE), (name, a[name], b[name])
    weights_a = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    weights_b = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for name, value in weights_a.items():
        assert torch.equal(value, weights_b[name]), name
    assert history(straight) == history(resumed)


def history(run_dir: Path) -> list[tuple]:
    """The CSV history as (step, metric, value rounded to 1e-6) rows, in file order."""
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        return [(row["step"], key, round(float(value), 6))
                for row in csv.DictReader(file) for key, value in sorted(row.items())
                if value and key != "step"]


@pytest.mark.slow  # ~35 s: three MNIST fits
@requires_shared("mnist")
def test_resume_is_exact_on_mnist(tmp_path):
    args = ["--config", str(CONFIGS / "mnist.yaml"),
            "--data.init_args.data_dir", str(SHARED_DATA / "mnist"),
            "--trainer.limit_train_batches", "12", "--trainer.limit_val_batches", "3",
            "--trainer.limit_test_batches", "3", "--trainer.log_every_n_steps", "4",
            "--trainer.enable_model_summary", "false"]
    straight, resumed = resume_pair(args, tmp_path)
    assert_same_run(straight, resumed)
    # One W&B run, continued: the resumed fit's offline run has the first one's id.
    ids = {p.name.rsplit("-", 1)[-1] for p in (resumed / "wandb").glob("offline-run-*")}
    assert len(list((resumed / "wandb").glob("offline-run-*"))) == 2 and len(ids) == 1


def test_resume_is_exact_with_augmentation_and_lookahead(tmp_path, tiny_cifar):
    # cifar.yaml shortened: 4 steps an epoch, Lookahead pulling every 2 steps.
    shorter = tmp_path / "shorter.yaml"
    shorter.write_text(
        "trainer:\n  callbacks:\n    - class_path: callbacks.GradientNorms\n"
        "    - class_path: callbacks.Lookahead\n      init_args:\n        every_n_steps: 2\n")
    args = ["--config", str(CONFIGS / "cifar.yaml"), "--config", str(shorter),
            "--data.init_args.data_dir", str(tiny_cifar), "--data.init_args.batch_size", "4",
            "--model.init_args.widths", "[8, 8, 8]", "--model.init_args.depth", "1",
            "--model.init_args.stem_width", "12", "--model.init_args.tta", "none",
            "--data.init_args.cutout", "4", "--trainer.precision", "32",
            "--trainer.logger", "false", "--trainer.enable_model_summary", "false",
            "--trainer.log_every_n_steps", "1"]
    straight, resumed = resume_pair(args, tmp_path)
    assert_same_run(straight, resumed)


@pytest.mark.slow  # ~45 s each: a real subprocess, then a resume
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"])
def test_interrupted_fit_resumes(tmp_path, signal_name):
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    repository = Path(__file__).resolve().parents[1]
    command = [sys.executable, str(repository / "main.py"), "fit", "--config",
               str(CONFIGS / "xor.yaml"), "--trainer.max_epochs", "100000",
               "--trainer.default_root_dir", str(tmp_path / "runs")]
    environment = {**os.environ, "PYTHONPATH": str(repository)}
    process = subprocess.Popen(command, env=environment, cwd=tmp_path, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    summary = None
    while time.monotonic() < deadline and process.poll() is None:
        found = list((tmp_path / "runs").glob("*/metrics.json"))
        if found and list(found[0].parent.glob("checkpoints/last.ckpt")):
            try:
                summary = json.loads(found[0].read_text())
            except ValueError:
                summary = None
            if summary and summary["epoch"] >= 3:
                break
        time.sleep(0.2)
    if not (summary and summary["status"] == "running"):  # running while it trains
        process.kill()
        pytest.fail(f"the run did not reach epoch 3 while running: {summary}")
    process.send_signal(getattr(signal, signal_name))
    try:
        _, err = process.communicate(timeout=120)
    finally:  # a run that ignored the signal must not train on for 100000 epochs
        if process.poll() is None:
            process.kill()
    run_dir = found[0].parent
    summary = metrics(run_dir)
    if signal_name == "SIGINT":
        assert process.returncode != 0
        assert summary["status"] == "interrupted"
        resume = err.strip().splitlines()[-1]
        assert resume.startswith("  resume it with: python main.py fit --config"), err
        assert "Traceback" not in err
    else:
        assert summary["status"] == "running"  # a killed run is told from a finished one
    stopped_at = summary["epoch"]
    from netscope.main import main
    main(["fit", "--config", str(run_dir / "config.yaml"),
          "--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt"),
          "--trainer.max_epochs", str(stopped_at + 2)])
    assert metrics(run_dir)["status"] == "completed"
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run_dir.name]
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        rows = [tuple(sorted(row.items())) for row in csv.DictReader(file)]
    assert len(rows) == len(set(rows))  # no row twice
    steps = [int(row["step"]) for row in csv.DictReader(open(run_dir / "csv" / "metrics.csv"))]
    assert steps == sorted(steps)  # one history, in order


def test_diverged_run_keeps_no_non_finite_checkpoint(tmp_path, capsys):
    run_dir = run("fit", "--config", str(CONFIGS / "xor.yaml"), "--model.init_args.init", "normal", "--model.init_args.init_scale", "1e30",
                  "--model.init_args.activation", "identity",
                  "--trainer.max_epochs", "2", "--test_after_fit", "false",
                  root=tmp_path / "runs")
    assert metrics(run_dir)["status"] == "diverged"
    for checkpoint in (run_dir / "checkpoints").glob("*.ckpt"):
        weights = torch.load(checkpoint, weights_only=True)["state_dict"]
        assert all(bool(value.isfinite().all()) for value in weights.values()), checkpoint
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("netscope: training diverged and was stopped (step"), last


def test_console_is_quiet_and_true(tmp_path):
    import os
    import subprocess
    import sys

    repository = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(repository / "main.py"), "fit", "--config", str(CONFIGS / "xor.yaml"),
         "--trainer.max_epochs", "1", "--trainer.enable_model_summary", "true",
         "--trainer.logger", "lightning.pytorch.loggers.WandbLogger",
         "--trainer.default_root_dir", str(tmp_path / "runs")],
        env={**os.environ, "PYTHONPATH": str(repository)}, cwd=tmp_path, timeout=600,
        capture_output=True, text=True)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    for noise in ("litlogger", "LeafSpec", "anonymous setting", "FLOPs"):
        assert noise not in output, noise
    assert output.count("W&B is offline") == 1
    assert done.stderr.strip().splitlines()[-1].startswith("netscope: fit completed; outputs in")


@pytest.mark.parametrize("config", ["cifar", "satellite"])
def test_a_finished_run_resumed_longer_is_refused_and_left_as_it_was(config, tmp_path, tiny_cifar,
                                                                      capsys):
    # Both configs' schedules span the fit. Resumed for more epochs, satellite's LinearLR
    # trained on silently at its final rate; the refusal itself marked the run "failed".
    data = {"cifar": ["--data.init_args.data_dir", str(tiny_cifar), "--data.init_args.batch_size",
                      "4", "--model.init_args.widths", "[8, 8, 8]"],
            "satellite": ["--data.init_args.data_dir",
                          str(make_class_folder(tmp_path / "images", per_class=4, corrupt=False)),
                          "--data.init_args.image_size", "16", "--data.init_args.batch_size", "8"]}
    run_dir = run("fit", "--config", str(CONFIGS / f"{config}.yaml"), *data[config],
                  "--trainer.precision", "32", "--trainer.max_epochs", "1",
                  "--trainer.logger", "false", "--trainer.enable_model_summary", "false",
                  root=tmp_path / "runs")
    files = ("config.yaml", "metrics.json", "csv/metrics.csv", "csv/hparams.yaml")
    before = {name: (run_dir / name).read_bytes() for name in files}
    assert metrics(run_dir)["status"] == "completed"
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(run_dir / "config.yaml"), "--ckpt_path",
              str(run_dir / "checkpoints" / "last.ckpt"), "--trainer.max_epochs", "2"])
    err = capsys.readouterr().err
    assert ("schedule is 1 epoch long, but this fit takes 2 epochs" in err  # satellite
            or "optimizer steps long" in err), err
    assert "fit completed" not in err, err
    assert {name: (run_dir / name).read_bytes() for name in files} == before
