"""Lightning's ``ModelCheckpoint`` that never writes weights that are not finite.

A diverged run's NaN weights are worth nothing to resume, test or export from, and a
NaN ``val/loss`` can still fill an empty top-k slot; so such a checkpoint is not written,
and the earlier, finite checkpoints (``last.ckpt`` among them) stay as they were.
"""

import torch
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint


class FiniteModelCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` (same arguments) that skips saving while any weight is NaN/inf."""

    def _save_topk_checkpoint(self, trainer: Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        if finite_weights(trainer):
            super()._save_topk_checkpoint(trainer, monitor_candidates)

    def _save_last_checkpoint(self, trainer: Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        if finite_weights(trainer):
            super()._save_last_checkpoint(trainer, monitor_candidates)


@torch.no_grad()
def finite_weights(trainer: Trainer) -> bool:
    """Whether every parameter and floating-point buffer of the model is finite (the same
    answer on every DDP rank: the weights are replicated)."""
    tensors = [t for t in trainer.lightning_module.state_dict().values() if t.is_floating_point()]
    # one answer from the device for all tensors, not a wait per tensor
    return not tensors or bool(torch.stack([t.isfinite().all() for t in tensors]).all())
