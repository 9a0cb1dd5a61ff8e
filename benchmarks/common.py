"""What the benchmarks share: building a config's objects, and a plain PyTorch train step.

The benchmarks build the model, data and optimizer exactly as ``python main.py fit
--config ...`` does (``NetscopeCLI(..., run=False)``), so they measure what a user runs.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import wandb
from lightning.pytorch import LightningModule

from benchmarks.timers import OTHER, Reading, StepTimer, Window, synchronize
from netscope.cli import NetscopeCLI
from netscope.datamodules.augment import random_flip, random_translate
from netscope.optim.schedules import build_optimizers

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "cifar.yaml"


def machine() -> str:
    """The CPU model and the number of cores and threads torch uses, for the record."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"with {torch.get_num_threads()} threads")


def device_name(accelerator: str) -> str:
    """What ``accelerator`` trains on here, for the record (the GPU's name, or ``cpu``)."""
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "cpu"


#: Where run directories of benchmark CLIs go unless a benchmark names a root: removed at exit,
#: so benchmarks leave nothing in ``runs/``.
_SCRATCH = tempfile.TemporaryDirectory(prefix="netscope-bench-")


def build(config: Path, data_dir: str | None, *overrides: str,
          accelerator: str = "auto") -> NetscopeCLI:
    """The config's trainer, model and datamodule, instantiated but not run, on one device of
    ``accelerator`` (its run directory in a temporary folder unless
    ``--trainer.default_root_dir`` is among the overrides)."""
    args = ["--config", str(config), *(["--data.init_args.data_dir", data_dir] if data_dir else []),
            "--trainer.default_root_dir", _SCRATCH.name, "--trainer.accelerator", accelerator,
            "--trainer.devices", "1", *overrides]
    # The benchmark's own options are in sys.argv; LightningCLI warns when it sees both.
    script_args, sys.argv = sys.argv, sys.argv[:1]
    try:
        return NetscopeCLI(args, run=False)
    finally:
        sys.argv = script_args


def autocast(cli: NetscopeCLI) -> torch.autocast:
    """The autocast context the trainer's precision setting implies (bf16-mixed or none)."""
    precision = str(cli.trainer.precision)
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
    return torch.autocast(cli.trainer.strategy.root_device.type, dtype=dtype,
                          enabled=precision.endswith("-mixed"))


def device_of(cli: NetscopeCLI) -> torch.device:
    """The device the config's trainer trains on (``--trainer.accelerator``)."""
    return cli.trainer.strategy.root_device


def train_step(model: LightningModule, optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
               targets: torch.Tensor, autocast_context: torch.autocast) -> torch.Tensor:
    """One training step as one would write it by hand: forward and loss under autocast,
    backward, optimizer step. The one hand-written step every benchmark compares against."""
    with autocast_context:
        loss = model.loss_fn(model(inputs), targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


class FitLength:
    """What :func:`models.optimization.fit_length` reads of a trainer, for a fit of
    ``max_epochs`` epochs of ``steps_per_epoch`` optimizer steps."""

    def __init__(self, steps_per_epoch: int, max_epochs: int) -> None:
        self.num_training_batches = steps_per_epoch
        self.accumulate_grad_batches = 1
        self.max_epochs = max_epochs
        self.estimated_stepping_batches = steps_per_epoch * max_epochs


class PlainLoop:
    """A hand-written training loop over the same tensors, model and optimizer: what one
    would write without Lightning (tensors on the training device, ``randperm`` batches,
    normalization and the configured flips and translation on the batch, autocast, SGD and
    a per-step scheduler)."""

    def __init__(self, cli: NetscopeCLI) -> None:
        data = cli.datamodule
        data.setup("fit")
        self.device = device_of(cli)
        self.images, self.labels = (t.to(self.device) for t in data.splits["train"])
        self.mean = torch.tensor(data.mean, device=self.device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(data.std, device=self.device).view(1, -1, 1, 1) * 255
        self.translate = data.translate
        self.flip, self.vflip = getattr(data, "flip", False), getattr(data, "vflip", False)
        self.batch_size = data.batch_size
        self.model = cli.model.to(self.device)
        # The model's own configure_optimizers reads the fit's length from its trainer, which
        # only a fit attaches; here the same optimizer and schedule are built for the length
        # the config's fit would have (full batches of the training split, max_epochs).
        steps_per_epoch = len(self.labels) // self.batch_size
        if steps_per_epoch == 0:
            raise ValueError(f"{len(self.labels)} training samples make no full batch of "
                             f"{self.batch_size}")
        built = build_optimizers(self.model.parameters(), getattr(cli.model, "optimizer_choice", None),
                                 getattr(cli.model, "lr_scheduler_choice", None),
                                 FitLength(steps_per_epoch, cli.trainer.max_epochs),
                                 cli.model.hparams.lr_scheduler_interval)
        self.optimizer = built["optimizer"] if isinstance(built, dict) else built
        self.scheduler = built["lr_scheduler"]["scheduler"] if isinstance(built, dict) else None
        self.autocast = autocast(cli)
        self.memory_format = (torch.channels_last if cli.model.hparams.get("channels_last")
                              else torch.contiguous_format)

    def batches(self):
        """Endless augmented training batches."""
        while True:
            order = torch.randperm(len(self.labels), device=self.device)
            for start in range(0, len(order) - self.batch_size + 1, self.batch_size):
                index = order[start:start + self.batch_size]
                images = (self.images[index].float() - self.mean) / self.std
                if self.flip:
                    images = random_flip(images)
                if self.vflip:  # top-bottom: a left-right flip of the transposed images
                    images = random_flip(images.transpose(-1, -2)).transpose(-1, -2)
                if self.translate:
                    images = random_translate(images, self.translate)
                yield images.contiguous(memory_format=self.memory_format), self.labels[index]

    def train(self, steps: int, warmup: int) -> Window:
        """Train ``steps`` steps; the timed window over those after ``warmup`` (each step
        timed alone too; on a GPU the step times are of the launches, the window's of
        the work)."""
        self.model.train()
        batches = self.batches()
        window = Window()
        for step in range(steps):
            started = Reading.now()
            train_step(self.model, self.optimizer, *next(batches), self.autocast)
            if self.scheduler is not None:
                self.scheduler.step()
            if step >= warmup:
                window.add_step(OTHER, started)
                window.images += self.batch_size
            if step == warmup - 1:
                synchronize(self.device)
                window.open()
        synchronize(self.device)
        window.close()
        return window


def lightning_window(cli: NetscopeCLI, steps: int, warmup: int,
                     before_fit: Callable[[NetscopeCLI], None] | None = None) -> Window:
    """Fit ``cli``'s model for ``steps`` steps (no validation); the timed window after
    ``warmup`` steps (:class:`~benchmarks.timers.StepTimer`). ``before_fit`` is called with
    ``cli`` once the timer is attached (e.g. to start ``wandb.watch``)."""
    timer = StepTimer(warmup)
    cli.trainer.callbacks.append(timer)
    try:
        if before_fit is not None:
            before_fit(cli)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    finally:
        if wandb.run is not None:  # a fresh W&B run for the next fit, as `main.py fit` gets
            wandb.finish()
    return timer.window


def lightning_images_per_second(cli: NetscopeCLI, steps: int, warmup: int) -> float:
    """Fit ``cli``'s model for ``steps`` steps (no validation); images/s after ``warmup``."""
    return lightning_window(cli, steps, warmup).images_per_second


def fit_overrides(steps: int, root: str) -> list[str]:
    """Arguments that make a fit exactly ``steps`` training steps with nothing else."""
    return ["--trainer.max_steps", str(steps), "--trainer.max_epochs", "-1",
            "--trainer.limit_val_batches", "0", "--trainer.num_sanity_val_steps", "0",
            "--trainer.enable_model_summary", "false", "--checkpoint.monitor", "null",
            "--trainer.default_root_dir", root]


def emit(result: dict, path: Path | None) -> None:
    """Print ``result`` as JSON, and write it to ``path`` when one is given."""
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        path.write_text(text + "\n")


def benchmark_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes (config, data, threads, JSON)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--data_dir", default=None, help="override the config's data_dir")
    parser.add_argument("--accelerator", default="auto",
                        help="where to train: cpu, gpu or auto, as --trainer.accelerator")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice, one per core)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    return parser


def parse_benchmark_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line and apply ``--threads``."""
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args
