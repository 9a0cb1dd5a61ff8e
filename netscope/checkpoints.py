"""Read what the CLI needs from a checkpoint before anything is built: is it one, of which
model, at which step."""

import importlib
import os
from pathlib import Path
from typing import Any

import torch

from netscope.callbacks.resume import MODEL_CLASS_KEY
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


def check_checkpoint(path: str, model_class_path: str) -> dict[str, Any]:
    """Refuse a checkpoint that is missing, unreadable, or of another model class; return
    the model hyper-parameters it saved.

    Lightning's special names (``last``, ``best``, ...) are left to Lightning.
    """
    if path in _SPECIAL:
        return {}
    checkpoint = load_checkpoint(path)
    saved = (checkpoint.get(MODEL_CLASS_KEY)
             or checkpoint.get("hyper_parameters", {}).get("_class_path"))  # older checkpoints
    if saved and not same_class(saved, model_class_path):
        raise UserError(
            f"--ckpt_path {path} holds a {saved} model, but the config builds a "
            f"{model_class_path}. Use the config the checkpoint was trained with (its run "
            f"folder has it as config.yaml), or choose the model with --model {saved}.")
    return dict(checkpoint.get("hyper_parameters") or {})


def same_class(first: str, second: str) -> bool:
    """Whether two class paths name the same class (``netscope.models.ConvNet`` and
    ``netscope.models.convnet.ConvNet`` do); paths that no longer import compare by name."""
    def resolved(path: str) -> str:
        module, _, name = path.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError):
            return name
        return f"{cls.__module__}.{cls.__qualname__}"

    a, b = resolved(first), resolved(second)
    if "." in a and "." in b:  # both import: the same class object or not
        return a == b
    return a.rsplit(".", 1)[-1] == b.rsplit(".", 1)[-1]


def checkpoint_step(path: str | os.PathLike) -> int:
    """The global step a checkpoint was written at."""
    return int(load_checkpoint(path).get("global_step", 0))
