"""Every everyday mistake: one paragraph on stderr, exit code 1, no traceback, and either
no run directory or one whose metrics.json says ``failed`` and why."""

from pathlib import Path

import pytest
import torch

from netscope.main import main
from tests.helpers import CONFIGS, FAST, metrics, run
from tests.image_folders import make_class_folder

XOR = ["fit", "--config", str(CONFIGS / "xor.yaml"), *FAST]


def fails(args: list[str], root: Path, capsys: pytest.CaptureFixture) -> tuple[str, list[Path]]:
    """Run ``main(args)`` expecting exit 1; return the error line and new run directories."""
    with pytest.raises(SystemExit) as stopped:
        main([*args, "--trainer.default_root_dir", str(root)])
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("netscope: error: ")]
    assert len(lines) == 1 and err.rstrip().endswith(lines[0]), err  # one paragraph, last
    return lines[0], sorted(root.iterdir()) if root.exists() else []


def assert_failed_or_absent(run_dirs: list[Path], reason: str) -> None:
    for run_dir in run_dirs:
        summary = metrics(run_dir)
        assert summary["status"] == "failed" and reason in summary["reason"], summary


def test_negative_learning_rate(tmp_path, capsys):
    line, dirs = fails([*XOR, "--optimizer.lr", "-0.1"], tmp_path / "runs", capsys)
    assert "Invalid learning rate: -0.1" in line and "SGD" in line
    assert_failed_or_absent(dirs, "Invalid learning rate")


def test_scheduler_rejects_a_value(tmp_path, capsys):
    line, dirs = fails([*XOR, "--lr_scheduler", "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts",
                        "--lr_scheduler.init_args.T_0", "0"], tmp_path / "runs", capsys)
    assert "CosineAnnealingWarmRestarts" in line and "T_0" in line, line
    assert_failed_or_absent(dirs, "T_0")


def test_misspelled_option_says_did_you_mean(tmp_path, capsys):
    line, dirs = fails([*XOR, "--optimizer.lrr", "0.1"], tmp_path / "runs", capsys)
    assert line.startswith("netscope: error: --optimizer.lrr is not an option")
    assert line.endswith("Did you mean --optimizer.lr?")
    assert dirs == []
    line, _ = fails([*XOR, "--trainer.max_epocs", "3"], tmp_path / "runs", capsys)
    assert line.endswith("Did you mean --trainer.max_epochs?")


@pytest.mark.parametrize("callback, option, value, takes", [
    ("GradientNorms", "every_n_steps", "abc", "a whole number or null"),
    ("Curvature", "budget", "abc", "a number"),
])
def test_a_callbacks_option_of_the_wrong_type_names_the_callback(callback, option, value, takes,
                                                                 tmp_path, capsys):
    # jsonargparse also says lightning.Callback takes no such option; that line said
    # "--trainer.callbacks.every_n_steps is not an option of lightning.Callback" before
    line, dirs = fails([*XOR, f"--trainer.callbacks+={callback}", f"--trainer.callbacks.{option}",
                        value], tmp_path / "runs", capsys)
    assert line == (f"netscope: error: --trainer.callbacks.{option} {value}: {callback}'s "
                    f"{option} takes {takes}.")
    assert dirs == []


def test_missing_checkpoint(tmp_path, capsys):
    line, dirs = fails([*XOR, "--ckpt_path", "nope.ckpt"], tmp_path / "runs", capsys)
    assert "--ckpt_path nope.ckpt: no such file" in line
    assert dirs == []


def test_checkpoint_of_another_model_names_both(tmp_path, capsys):
    # A checkpoint as LightningCLI writes it, of a ConvNet.
    checkpoint = tmp_path / "convnet.ckpt"
    torch.save({"hyper_parameters": {"_class_path": "netscope.models.ConvNet"}, "state_dict": {}}, checkpoint)
    line, dirs = fails([*XOR, "--ckpt_path", str(checkpoint)], tmp_path / "runs", capsys)
    assert "netscope.models.ConvNet" in line and "netscope.models.MLP" in line
    assert dirs == []


def test_image_folder_with_one_class(tmp_path, capsys):
    root = make_class_folder(tmp_path / "one", per_class=4, corrupt=False)
    for name in ("beta", "gamma"):
        for file in (root / name).iterdir():
            file.unlink()
        (root / name).rmdir()
    line, dirs = fails(["fit", "--config", str(CONFIGS / "satellite.yaml"), *FAST,
                        "--data.init_args.data_dir", str(root)], tmp_path / "runs", capsys)
    assert "has one class folder (alpha)" in line and "at least two" in line
    assert_failed_or_absent(dirs, "one class folder")


def test_unwritable_root_dir(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line, _ = fails(XOR, blocker / "runs", capsys)
    assert "Cannot create a run directory" in line and "--trainer.default_root_dir" in line


def test_predict_without_checkpoint_is_refused(tmp_path, capsys):
    line, dirs = fails(["predict", "--config", str(CONFIGS / "xor.yaml")], tmp_path / "runs", capsys)
    assert "--ckpt_path" in line and "--untrained true" in line
    assert dirs == []


class Payload:
    """Stands for an object a hostile checkpoint carries (a pickle can name any callable)."""


def test_unsafe_checkpoint_is_refused_in_one_plain_paragraph(tmp_path, capsys):
    """Objects beyond weights are refused (weights_only), for a path and for ``last`` alike,
    in one complete paragraph without the terminal codes torch puts in its message."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    torch.save({"state_dict": {}, "extra": Payload()}, folder / "last.ckpt")
    for extra in (["--ckpt_path", str(folder / "last.ckpt")],
                  ["--checkpoint.dirpath", str(folder), "--ckpt_path", "last"]):
        line, dirs = fails([*XOR, *extra], tmp_path / "runs", capsys)
        assert "\x1b" not in line and "two options" not in line, line
        assert "tests.test_bad_input.Payload" in line and "weights only" in line
        assert line.endswith("save it again without those objects.")
        assert dirs == []
    assert f"--ckpt_path last ({folder / 'last.ckpt'})" in line


def test_ckpt_path_last_and_hpc_are_checked_as_a_path(tmp_path, capsys):
    line, dirs = fails([*XOR, "--ckpt_path", "last"], tmp_path / "runs", capsys)
    assert "--ckpt_path last" in line and "empty checkpoints/ folder" in line and dirs == []
    line, dirs = fails([*XOR, "--ckpt_path", "hpc"], tmp_path / "runs", capsys)  # was a traceback
    assert "hpc_ckpt_<N>.ckpt" in line and dirs == []
    line, _ = fails([*XOR, "--ckpt_path", "best"], tmp_path / "runs", capsys)
    assert "--ckpt_path best" in line

    # last and hpc name real files: the check reads the file Lightning would load.
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    torch.save({"hyper_parameters": {"_class_path": "netscope.models.ConvNet"}, "state_dict": {}},
               folder / "last.ckpt")
    line, _ = fails([*XOR, "--checkpoint.dirpath", str(folder), "--ckpt_path", "last"], tmp_path / "runs", capsys)
    assert f"last ({folder / 'last.ckpt'}) holds a netscope.models.ConvNet model" in line
    root = tmp_path / "root"
    root.mkdir()
    for number in (1, 2, 10):
        torch.save({"hyper_parameters": {"_class_path": "netscope.models.ConvNet"}, "state_dict": {}},
                   root / f"hpc_ckpt_{number}.ckpt")
    with pytest.raises(SystemExit):
        main([*XOR, "--ckpt_path", "hpc", "--trainer.default_root_dir", str(root)])
    assert f"hpc ({root / 'hpc_ckpt_10.ckpt'}) holds a netscope.models.ConvNet" in capsys.readouterr().err


def test_ckpt_path_last_loads_the_checkpoint_it_names(tmp_path):
    fit_dir = run(*XOR, root=tmp_path / "runs")
    checkpoints = fit_dir / "checkpoints"
    by_path = run("validate", *XOR[1:], "--ckpt_path", str(checkpoints / "last.ckpt"), root=tmp_path / "runs")
    by_name = run("validate", *XOR[1:], "--checkpoint.dirpath", str(checkpoints), "--ckpt_path", "last",
                  root=tmp_path / "runs")
    assert metrics(by_name)["status"] == "completed"
    assert metrics(by_name)["val/loss"] == metrics(by_path)["val/loss"]
