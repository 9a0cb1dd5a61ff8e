"""The performance recipe and its measuring tools: the CIFAR budget in images, the head
without a bias, gradient norms read in one transfer, and time_to_accuracy's curve read
through core.history."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch import Callback
from lightning.pytorch.utilities import grad_norm

from benchmarks.common import build, fit_overrides
from benchmarks.overhead import without_log_calls
from benchmarks.time_to_accuracy import epoch_curve, first_reaching
from netscope.callbacks.diagnostic import is_due
from netscope.core.rundir import RunDir
from netscope.datamodules import CIFAR10DataModule
from netscope.models import ConvNet
from tests.helpers import CONFIGS, make_mnist, metrics, run
from tests.image_folders import make_class_folder

#: airbench94's images seen: 9.9 epochs x 50000 (issue 14).
AIRBENCH_IMAGES = 495_000


def test_the_shipped_recipe_trains_on_at_most_airbench_images() -> None:
    config = yaml.safe_load((CONFIGS / "cifar.yaml").read_text())
    data_args = {k: v for k, v in config["data"]["init_args"].items() if k != "data_dir"}
    data = CIFAR10DataModule(**data_args)
    labels = torch.arange(50_000) % 10  # CIFAR-10's balanced training set
    (train_images, _), (val_images, _) = data.hold_out((torch.zeros(50_000, 1), labels))
    steps_per_epoch = len(train_images) // data.batch_size  # full batches only
    images = config["trainer"]["max_epochs"] * steps_per_epoch * data.batch_size
    assert images == AIRBENCH_IMAGES  # all of airbench94's budget, and no more
    assert steps_per_epoch * data.batch_size == len(train_images)  # every image every epoch
    assert len(val_images) + len(train_images) == 50_000  # validation is not the test set


def test_head_bias_can_be_left_out() -> None:
    shape = dict(num_classes=10, input_shape=(3, 32, 32), widths=[8, 16])
    assert ConvNet(**shape).head[-1].bias is not None  # the default keeps it
    model = ConvNet(**shape, head_bias=False)
    assert model.head[-1].bias is None
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


class LightningNorms(Callback):
    """Lightning's own ``grad_norm`` total on every logging step, to compare with."""

    totals: dict[int, float] = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if is_due(trainer, trainer.log_every_n_steps):
            step = trainer.fit_loop.epoch_loop._batches_that_stepped
            LightningNorms.totals[step] = float(grad_norm(pl_module, 2)["grad_2.0_norm_total"])


def test_gradient_norms_equal_lightnings(tmp_path: Path) -> None:
    LightningNorms.totals = {}
    run_dir = run("fit", "--config", str(CONFIGS / "xor.yaml"), "--trainer.max_epochs", "1",
                  "--trainer.log_every_n_steps", "5",
                  "--trainer.callbacks+=tests.test_perf.LightningNorms", root=tmp_path / "runs")
    steps, values = RunDir(run_dir).history().series("grad_norm/total")
    assert len(steps) == 5 and set(steps) == set(LightningNorms.totals)
    for step, value in zip(steps, values):
        assert abs(value - LightningNorms.totals[step]) <= 1e-5 * max(1.0, value)


def test_time_to_accuracy_counts_images_and_reads_the_curve_from_history(tmp_path: Path) -> None:
    run_dir = run("fit", "--config", str(CONFIGS / "xor.yaml"), "--trainer.max_epochs", "3",
                  "--trainer.callbacks+=benchmarks.time_to_accuracy.ElapsedTime",
                  root=tmp_path / "runs")
    curve = epoch_curve(RunDir(run_dir).history())
    # XOR: 25 batches of the 4-point truth table per epoch
    assert [e["epoch"] for e in curve] == [1, 2, 3]
    assert [e["images_seen"] for e in curve] == [100, 200, 300]
    assert all("val_acc" in e and "train_loss" in e for e in curve)
    assert 0 < curve[0]["train_s"] <= curve[1]["train_s"] <= curve[2]["train_s"]
    assert curve[2]["elapsed_s"] >= curve[2]["train_s"]
    reached = first_reaching(curve, curve[-1]["val_acc"], "images_seen")
    assert reached in (100, 200, 300)
    assert metrics(run_dir)["time/images_seen"] == 300


def _small_cifar_config(tmp_path: Path) -> Path:
    config = yaml.safe_load((CONFIGS / "cifar.yaml").read_text())
    config["model"]["init_args"]["widths"] = [8, 16, 16]
    config["data"]["init_args"]["batch_size"] = 8
    small = tmp_path / "cifar_small.yaml"
    small.write_text(yaml.safe_dump(config))
    return small


def _benchmark(script: str, tmp_path: Path, *args: str) -> tuple[dict, str]:
    """Run ``benchmarks/<script>`` with ``args`` and ``--json``; its JSON and stderr."""
    result_path = tmp_path / f"{script}.json"
    done = subprocess.run([sys.executable, str(CONFIGS.parent / "benchmarks" / script), *args,
                           "--accelerator", "cpu", "--json", str(result_path)],
                          check=True, capture_output=True, text=True, cwd=tmp_path)
    return json.loads(result_path.read_text()), done.stderr


WINDOW_KEYS = ("img_s", "cpu_img_s", "wall_s", "cpu_s")


def test_overhead_benchmark_measures_every_variant(tiny_cifar: Path, tmp_path: Path) -> None:
    # It broke unnoticed once the optimizer became built inside the fit (configure_optimizers
    # reads the fit's length from a trainer the plain loop never has).
    result, stderr = _benchmark("overhead.py", tmp_path,
                                "--config", str(_small_cifar_config(tmp_path)),
                                "--data_dir", str(tiny_cifar), "--precision", "32-true",
                                "--steps", "3", "--warmup", "1", "--repeats", "1",
                                "--log_every_n_steps", "1")
    assert "wandb run already in progress" not in stderr  # each fit its own W&B run
    variants = ("raw", "netscope", "netscope_diag", "wandb_watch")
    assert all(result[f"{v}_img_s"] > 0 for v in variants)
    assert all(result[f"{v}_vs_raw"] > 0 for v in variants[1:])
    for v in variants:
        (window,) = result["windows"][v]
        assert all(window[key] > 0 for key in WINDOW_KEYS)
        assert window["minor_faults"] >= 0 and window["garbage_collected"] > 0
    # every timed step but the last is a logging step at this cadence
    assert result["windows"]["netscope_diag"][0]["steps"]["log"] == 1
    assert result["settings"]["precision"] == "32-true"
    assert result["settings"]["keep_garbage"] is False


@pytest.mark.parametrize("skip_logs", [False, True])
def test_no_log_variant_skips_only_the_models_log_calls(skip_logs: bool, tmp_path: Path) -> None:
    cli = build(CONFIGS / "xor.yaml", None, *fit_overrides(4, str(tmp_path)),
                "--trainer.callbacks=[]", "--trainer.logger", "false", accelerator="cpu")
    if skip_logs:
        without_log_calls(cli)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert ("train/loss" in cli.trainer.callback_metrics) is not skip_logs
    assert cli.trainer.global_step == 4
    if skip_logs:  # the metrics still update: only Lightning's bookkeeping is skipped
        assert cli.model.train_metrics["acc"].update_count == 4


def test_model_sizes_benchmark_gives_each_size_its_row(tiny_cifar: Path, tmp_path: Path) -> None:
    mnist = make_mnist(tmp_path / "mnist", train=600, test=50)
    satellite = make_class_folder(tmp_path / "satellite", per_class=8, corrupt=False)
    result, _ = _benchmark(
        "model_sizes.py", tmp_path, "--steps", "5", "--warmup", "1", "--repeats", "1",
        "--log_every_n_steps", "2", "--mlp_mnist_data", str(mnist),
        "--convnet_cifar_config", str(_small_cifar_config(tmp_path)),
        "--convnet_cifar_data", str(tiny_cifar),
        "--convnet_cifar_args=--data.init_args.batch_size 8",
        "--resnet18_satellite_data", str(satellite),
        "--resnet18_satellite_args=--data.init_args.batch_size 8 --data.init_args.image_size 32")
    sizes = result["sizes"]
    assert list(sizes) == ["mlp_mnist", "convnet_cifar", "resnet18_satellite"]
    for row in sizes.values():
        for key in ("raw_img_s", "netscope_diag_img_s", "netscope_diag_vs_raw", "raw_step_ms",
                    "netscope_diag_step_ms", "netscope_diag_log_step_ms",
                    "netscope_diag_log_step_cpu_ms", "raw_cpu_img_s"):
            assert row[key] > 0, key
        assert "netscope_diag_log_step_extra_ms" in row
    params = [row["parameters"] for row in sizes.values()]
    assert params[0] == 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10  # the MNIST MLP
    assert params[2] > 11_000_000  # ResNet-18
