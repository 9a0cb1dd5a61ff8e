"""What a resumed fit needs that Lightning's checkpoint does not keep, and ``last.ckpt``
on Ctrl+C.

Lightning saves the weights, optimizers, schedulers, loops and every callback's and the
datamodule's ``state_dict``, but not the global random generators (dropout, augmentation,
whatever a model draws). Without them a resumed fit drifts from the uninterrupted one.
"""

from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn


class ResumeState(Callback):
    """Keep the global RNG states (torch, CUDA, numpy, Python) in every checkpoint, put
    them back when a resumed fit starts training, and write ``last.ckpt`` when a fit is
    interrupted (Ctrl+C, SIGTERM).

    The states are taken when the checkpoint is written (at the end of an epoch's
    validation) and set at ``on_train_start``, after the sanity check and the loaders are
    built: from there on, the resumed fit draws exactly the numbers the uninterrupted fit
    drew after writing that checkpoint.
    """

    def __init__(self) -> None:
        self._restored: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        # Lightning's own collector (the same one Fabric uses): all devices' CUDA states too.
        states = _collect_rng_states()
        if "numpy" in states:  # as tensors and numbers: checkpoints load with weights_only
            kind, keys, *rest = states["numpy"]
            states["numpy"] = (kind, torch.from_numpy(keys.astype(np.int64)), *rest)
        return {"rng": states}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        states = dict(state_dict.get("rng") or {})
        if "numpy" in states:
            kind, keys, *rest = states["numpy"]
            states["numpy"] = (kind, keys.numpy().astype(np.uint32), *rest)
        self._restored = states or None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._restored is not None:
            _set_rng_states(self._restored)
            self._restored = None

    def on_exception(self, trainer: Trainer, pl_module: LightningModule,
                     exception: BaseException) -> None:
        if not _is_interruption(exception) or trainer.state.fn != "fit":
            return
        checkpoint = trainer.checkpoint_callback
        if not isinstance(checkpoint, ModelCheckpoint) or not checkpoint.dirpath:
            return
        if trainer.world_size > 1:
            return  # saving is collective; ranks interrupted one by one cannot all join
        path = Path(checkpoint.dirpath) / f"{checkpoint.CHECKPOINT_NAME_LAST}{checkpoint.FILE_EXTENSION}"
        try:
            trainer.save_checkpoint(path)
        except Exception as error:  # an interruption must still end cleanly
            rank_zero_warn(f"Could not write {path} on interruption: {error}")


def _is_interruption(exception: BaseException) -> bool:
    """Ctrl+C, or Lightning's SIGTERM handling (a scheduler stopping the job)."""
    return isinstance(exception, KeyboardInterrupt) or type(exception).__name__ == "SIGTERMException"
