"""What a GPU could break that a CPU hides: every shipped config on CUDA, and no host-device
synchronization inside a training step that logs nothing.

Marked ``gpu``: skipped without CUDA (``tests/conftest.py``), run by
``benchmarks/gpu_check.sh`` (``python -m pytest -m gpu``). Each config runs shortened through
``main`` as a user types it, with bf16, channels-last, its data held on the device and the
config's own diagnostics (whatever ``trainer.callbacks`` lists: the doctor too, once it is
there) and figures on, on tiny generated data so that no data set needs to be present.
"""

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from netscope.core.compat import logger_step
from netscope.datamodules.augment import (
    alternating_flip,
    random_cutout,
    random_flip,
    random_translate,
)
from tests.helpers import CONFIGS, metrics, run
from tests.image_folders import make_class_folder

pytestmark = pytest.mark.gpu

#: Where the runs train (a module constant, so the plumbing can be dry-run on a CPU).
DEVICE = "cuda"

#: Short, but long enough that diagnostics log several times and an epoch ends twice.
SHORT = ["--trainer.accelerator", "gpu", "--trainer.devices", "1", "--trainer.max_epochs", "2",
         "--trainer.limit_train_batches", "6", "--trainer.limit_val_batches", "2",
         "--trainer.limit_test_batches", "2", "--trainer.log_every_n_steps", "2",
         "--trainer.precision", "bf16-mixed", "--trainer.enable_model_summary", "false"]

#: Configs whose model takes ``channels_last`` images (the MLPs flatten theirs).
IMAGE_MODELS = {"cifar", "satellite"}


def write_idx_mnist(root: Path, name: str, count: int = 200) -> Path:
    """``root/<name>/raw/*-ubyte``: ``count`` random 28x28 digits per split in the idx format
    torchvision reads (so MNIST-type configs run without the real data)."""
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = np.arange(count, dtype=np.uint8) % 10
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, count, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, count) + labels.tobytes())
    return root


class OnDevice(Callback):
    """Records where training batches and the datamodule's splits live."""

    devices: set[str] = set()

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch,
                             batch_idx: int) -> None:
        OnDevice.devices.add(batch[0].device.type)
        splits = getattr(trainer.datamodule, "splits", None) or {}
        OnDevice.devices.update(t.device.type for t in splits.get("train", ()))


def data_args(name: str, tmp_path: Path, tiny_cifar: Path) -> list[str]:
    """Where each config finds tiny generated data of its kind."""
    match name:
        case "xor":
            return []
        case "mnist":
            return ["--data.init_args.data_dir", str(write_idx_mnist(tmp_path / "mnist", "MNIST"))]
        case "fashion_mnist":
            return ["--data.init_args.data_dir",
                    str(write_idx_mnist(tmp_path / "fashion", "FashionMNIST"))]
        case "cifar":
            return ["--data.init_args.data_dir", str(tiny_cifar), "--data.init_args.batch_size", "8",
                    "--data.init_args.val_fraction", "0.34"]
        case "satellite":
            folder = make_class_folder(tmp_path / "satellite", per_class=12, corrupt=False)
            return ["--data.init_args.data_dir", str(folder), "--data.init_args.batch_size", "8"]
    raise AssertionError(f"no tiny data for configs/{name}.yaml")


@pytest.mark.parametrize("name", ["xor", "mnist", "fashion_mnist", "satellite", "cifar"])
def test_shipped_config_trains_on_cuda_with_diagnostics(name: str, tmp_path: Path,
                                                       tiny_cifar: Path) -> None:
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == sorted(
        ["xor", "mnist", "fashion_mnist", "satellite", "cifar"]), "a new config: add it here"
    OnDevice.devices = set()
    channels_last = ["--model.init_args.channels_last", "true"] if name in IMAGE_MODELS else []
    run_dir = run("fit", "--config", str(CONFIGS / f"{name}.yaml"), *data_args(name, tmp_path, tiny_cifar),
                  *SHORT, *channels_last, "--trainer.callbacks+=tests.test_gpu.OnDevice",
                  root=tmp_path / "runs")
    result = metrics(run_dir)
    assert result["status"] == "completed", result.get("reason")
    assert OnDevice.devices == {DEVICE}  # batches and the resident training split
    assert "grad_norm/total" in result and any(k.startswith("act_") for k in result)
    assert "test/loss" in result and np.isfinite(result["test/loss"])
    assert list(run_dir.glob("*.png")), "the config's figures were not drawn"


class SyncTrap(Callback):
    """Turns any host-device synchronization into an error during training batches on which
    no diagnostic is due: not a logging step, not a divergence check, not the first batch
    (the guard reads its reference loss) nor the last of an epoch (epoch-end histograms)."""

    quiet_batches = 0

    def __init__(self, log_every: int = 5, check_every: int = 10) -> None:
        self.log_every, self.check_every = log_every, check_every

    def quiet(self, trainer: Trainer) -> bool:
        step = logger_step(trainer)
        return (step > 0 and (step + 1) % self.log_every and (step + 1) % self.check_every
                and not trainer.is_last_batch)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch,
                             batch_idx: int) -> None:
        if self.quiet(trainer):
            SyncTrap.quiet_batches += 1
            torch.cuda.set_sync_debug_mode("error")

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        torch.cuda.set_sync_debug_mode(0)  # last of the callbacks: the others ran under the trap

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        torch.cuda.set_sync_debug_mode(0)


def test_no_host_sync_in_the_training_step_of_the_cifar_config(tmp_path: Path,
                                                               tiny_cifar: Path) -> None:
    SyncTrap.quiet_batches = 0
    run_dir = run("fit", "--config", str(CONFIGS / "cifar.yaml"), "--data.init_args.data_dir",
                  str(tiny_cifar), "--data.init_args.batch_size", "2",
                  "--data.init_args.val_fraction", "0.34",
                  *SHORT, "--trainer.limit_train_batches", "9", "--trainer.log_every_n_steps", "5",
                  "--trainer.callbacks+=tests.test_gpu.SyncTrap", root=tmp_path / "runs")
    result = metrics(run_dir)
    assert result["status"] == "completed", result.get("reason")
    assert SyncTrap.quiet_batches >= 8  # steps 1, 2, 3, 5, 6, 7 of both epochs, less the last


def test_batch_augmentations_never_wait_for_the_device() -> None:
    images = torch.rand(64, 3, 32, 32, device="cuda")
    phase = torch.rand(64, device="cuda") < 0.5
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = random_translate(random_flip(alternating_flip(images, phase, 1)), 2)
        out = random_cutout(out, 8)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert out.shape == images.shape and out.device == images.device
