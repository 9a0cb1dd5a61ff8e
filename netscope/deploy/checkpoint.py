"""Restore a checkpoint into the model and datamodule the CLI built from the config.

``export`` and ``serve`` run no Trainer loop, so Lightning's own restore (which ``predict``
gets through ``ckpt_path``) does not happen; this does the two parts of it they need: the
weights, and the datamodule's state (an image folder's measured mean and std, its classes).
"""

from lightning.pytorch import LightningDataModule, LightningModule

from netscope.checkpoints import load_checkpoint
from netscope.core.errors import UserError


def restore(model: LightningModule, datamodule: LightningDataModule | None, ckpt_path: str | None) -> None:
    """Load ``ckpt_path``'s weights into ``model`` and its datamodule state into ``datamodule``."""
    if not ckpt_path:
        raise UserError("This command needs a trained model: --ckpt_path <run dir>/checkpoints/<file>.ckpt "
                        "(serve also takes an exported file: --onnx <export run dir>/model.onnx).")
    checkpoint = load_checkpoint(ckpt_path)  # weights only, as every command reads one
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, KeyError, OSError) as error:  # truncated file, or another model's weights
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"The checkpoint '{ckpt_path}' cannot be loaded into {type(model).__name__} "
                        f"as configured ({first}). Use the config the checkpoint was trained with.") from error
    # Lightning stores a datamodule's state_dict under its class name.
    state = checkpoint.get(type(datamodule).__qualname__) if datamodule is not None else None
    if state:
        datamodule.load_state_dict(state)
