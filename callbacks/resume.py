"""What a resumed fit needs that Lightning's checkpoint does not keep, and ``last.ckpt``
on Ctrl+C.

Lightning saves the weights, optimizers, schedulers, loops and every callback's and the
datamodule's ``state_dict``, but not the global random generators (dropout, augmentation,
whatever a model draws). Without them a resumed fit drifts from the uninterrupted one.
"""

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn

from netscope.callbacks.run_summary import is_interruption
from netscope.models.wrapped import inspected

#: Where netscope's checkpoints record the class of the model they hold (the user's network
#: for a wrapped ``nn.Module``), for ``netscope.checkpoints.check_checkpoint``.
MODEL_CLASS_KEY = "netscope_model_class"


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
        return {"rng": rng_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = dict(state_dict.get("rng") or {}) or None

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        # which class the weights are for, so that a command refuses another model's
        # checkpoint with a message (netscope.checkpoints.check_checkpoint)
        model = inspected(pl_module)
        checkpoint[MODEL_CLASS_KEY] = f"{type(model).__module__}.{type(model).__qualname__}"

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._restored is not None:
            set_rng_states(self._restored)
            self._restored = None

    def on_exception(self, trainer: Trainer, pl_module: LightningModule,
                     exception: BaseException) -> None:
        if not is_interruption(exception) or trainer.state.fn != "fit":
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


def rng_states() -> dict[str, Any]:
    """The global random generators' states (torch, every CUDA device, numpy, Python), as
    tensors and numbers so that checkpoints load with ``weights_only``."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["torch.cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Put back what :func:`rng_states` took."""
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "torch.cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["torch.cuda"])
    if "numpy" in states:
        kind, keys, *rest = states["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    if "python" in states:
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
