"""Read what the CLI needs from a checkpoint before anything is built: is it one, of which
model, at which step."""

import os
from pathlib import Path
from typing import Any

import torch

from netscope.core.errors import UserError

#: Lightning's names for checkpoints it finds by itself (``--ckpt_path last``).
_SPECIAL = ("last", "best", "hpc", "registry")


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's contents (tensors on the CPU), or a UserError saying why not."""
    if not Path(path).is_file():
        raise UserError(f"--ckpt_path {path}: no such file. Give the path of a checkpoint, "
                        f"e.g. runs/<run>/checkpoints/last.ckpt (each run keeps its checkpoints "
                        f"in its checkpoints/ folder).")
    try:
        # weights_only: a checkpoint is data; nothing in it should run code when read.
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserError(f"--ckpt_path {path} cannot be read as a checkpoint ({type(error).__name__}: "
                        f"{str(error).splitlines()[0] if str(error) else ''}). Give a .ckpt file "
                        f"written by netscope or Lightning.") from None


def check_checkpoint(path: str, model_class_path: str) -> None:
    """Refuse a checkpoint that is missing, unreadable, or of another model class.

    Lightning's special names (``last``, ``best``, ...) are left to Lightning.
    """
    if path in _SPECIAL:
        return
    saved = load_checkpoint(path).get("hyper_parameters", {}).get("_class_path")
    if saved and saved != model_class_path:
        raise UserError(
            f"--ckpt_path {path} holds a {saved} model, but the config builds a "
            f"{model_class_path}. Use the config the checkpoint was trained with (its run "
            f"folder has it as config.yaml), or choose the model with --model {saved}.")


def checkpoint_step(path: str | os.PathLike) -> int:
    """The global step a checkpoint was written at."""
    return int(load_checkpoint(path).get("global_step", 0))
