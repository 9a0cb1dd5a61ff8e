"""Lightning's ``ModelCheckpoint`` that never writes weights that are not finite, and finds
the validation metric it monitors under the name the model logs it.

A diverged run's NaN weights are worth nothing to resume, test or export from, and a
NaN ``val/loss`` can still fill an empty top-k slot; so such a checkpoint is not written,
and the earlier, finite checkpoints (``last.ckpt`` among them) stay as they were.

netscope's configs monitor ``val/acc`` or ``val/loss``; a user's own LightningModule logs
them as it likes (``val_acc``, ``val_loss``). The monitor follows such a name; a model that
logs none of them is checkpointed without a monitor (the latest epoch and ``last.ckpt``),
with one notice, instead of failing the fit at its first validation.
"""

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from netscope.callbacks.console import say

#: Other names under which models log the metrics netscope's configs monitor.
MONITOR_ALIASES: dict[str, tuple[str, ...]] = {
    "val/loss": ("val_loss", "valid_loss", "validation_loss", "val/loss_epoch", "val_loss_epoch"),
    "val/acc": ("val_acc", "valid_acc", "val_accuracy", "val/accuracy", "val_acc_epoch"),
}


class FiniteModelCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` (same arguments) that skips saving while any weight is NaN/inf,
    and follows its monitored metric to the name the model logs it under."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        every_n_train_steps = kwargs.get("every_n_train_steps")
        # saving within an epoch: the finite check runs on the training batches too
        self.saves_on_steps = bool(every_n_train_steps) or kwargs.get("train_time_interval") is not None
        #: whether the monitored metric was ever logged (a fit can end before validating)
        self.monitor_seen = False

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any,
                           **kwargs: Any) -> None:
        if not self.saves_on_steps or finite_weights(trainer):
            super().on_train_batch_end(trainer, pl_module, *args, **kwargs)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.follow_monitor(trainer)
        if finite_weights(trainer):
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.follow_monitor(trainer)
        if finite_weights(trainer):
            super().on_validation_end(trainer, pl_module)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if finite_weights(trainer):  # last.ckpt at the end of a diverged fit: not written
            super().on_train_end(trainer, pl_module)
        if self.monitor is not None and not self.monitor_seen and trainer.global_step > 0:
            say(f"netscope: the fit logged no {self.monitor} (no validation ran), so the "
                f"checkpoints hold the latest weights, not the best.")

    def on_exception(self, trainer: Trainer, pl_module: LightningModule,
                     exception: BaseException) -> None:
        if finite_weights(trainer):
            super().on_exception(trainer, pl_module, exception)

    def follow_monitor(self, trainer: Trainer) -> None:
        """Monitor the metric under the name the model logs it, or nothing."""
        metrics = trainer.callback_metrics
        if self.monitor is None or trainer.sanity_checking:
            return
        if self.monitor in metrics:
            self.monitor_seen = True
            return
        if not any(name.startswith(("val", "valid")) for name in metrics):
            return  # no validation yet (or none at all this epoch): nothing to follow
        alias = next((a for a in MONITOR_ALIASES.get(self.monitor, ()) if a in metrics), None)
        if alias is not None:
            self.monitor, self.monitor_seen = alias, True
            return
        say(f"netscope: the model logs no {self.monitor}, which the checkpoints "
                       f"monitor; they keep the latest epoch and last.ckpt instead. Set "
                       f"--checkpoint.monitor to a metric it logs to keep the best.")
        self.monitor, self.save_top_k = None, 1


@torch.no_grad()
def finite_weights(trainer: Trainer) -> bool:
    """Whether every parameter and floating-point buffer of the model is finite (the same
    answer on every DDP rank: the weights are replicated)."""
    tensors = [t for t in trainer.lightning_module.state_dict().values() if t.is_floating_point()]
    # one answer from the device for all tensors, not a wait per tensor
    return not tensors or bool(torch.stack([t.isfinite().all() for t in tensors]).all())
