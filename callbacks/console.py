"""Plain, one-line-per-epoch progress for logs that are not a terminal (CI, clusters).

A progress bar redrawn with carriage returns turns a log file into noise; this prints
one readable line per epoch instead.
"""

import time

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info


class EpochLinePrinter(Callback):
    """Print ``epoch N/M`` with the epoch's task metrics and its duration."""

    def __init__(self, prefixes: tuple[str, ...] = ("train/", "val/")) -> None:
        self.prefixes = prefixes
        self.epoch_started = time.monotonic()

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.epoch_started = time.monotonic()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        values = []
        for name, value in sorted(trainer.callback_metrics.items()):
            if (name.startswith(self.prefixes) and not name.endswith(("_step", "_epoch"))
                    and isinstance(value, torch.Tensor) and value.numel() == 1):
                values.append(f"{name} {value.item():.4f}")
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        rank_zero_info(f"epoch {trainer.current_epoch + 1}/{total}  " + "  ".join(values)
                       + f"  ({time.monotonic() - self.epoch_started:.1f} s)")
