"""Read what the CLI needs from a checkpoint before anything is built: is it one, of which
model, at which step; and the file each of Lightning's special names (``last``, ``hpc``)
stands for, so that the file checked is the file loaded."""

import importlib
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from netscope.callbacks.resume import MODEL_CLASS_KEY
from netscope.core.errors import UserError

#: Lightning's registry names (``registry`` or ``registry:<model>``), left to Lightning.
_REGISTRY = "registry"
#: Terminal control sequences (colour, bold) that some libraries put in their messages.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def plain(text: str) -> str:
    """``text`` without terminal escape codes, on one line."""
    return " ".join(_ESCAPES.sub("", text).split())


def load_checkpoint(path: str | os.PathLike, name: str | None = None) -> dict[str, Any]:
    """The checkpoint's contents (tensors on the CPU), or a UserError saying why not
    (naming it ``--ckpt_path <name>``, by default its path)."""
    name = name or str(path)
    if not Path(path).is_file():
        raise UserError(f"--ckpt_path {path}: no such file. Give the path of a checkpoint, "
                        f"e.g. runs/<run>/checkpoints/last.ckpt (each run keeps its checkpoints "
                        f"in its checkpoints/ folder).")
    try:
        # weights_only: a checkpoint is data; nothing in it should run code when read.
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # what weights_only refuses: objects beyond weights
        named = re.search(r"GLOBAL (\S+)", plain(str(error)))
        raise UserError(
            f"--ckpt_path {name} holds Python objects besides weights"
            + (f" ({named.group(1)})" if named else "")
            + ". netscope reads checkpoints as weights only, so that opening one cannot run "
              "code from it, and refuses this one. Use a checkpoint written by netscope or "
              "Lightning; if this file is your own and you trust it, load it in Python and "
              "save it again without those objects.") from None
    except Exception as error:
        first = plain(str(error).strip().splitlines()[0]) if str(error).strip() else ""
        raise UserError(f"--ckpt_path {name} cannot be read as a checkpoint ({type(error).__name__}"
                        f"{': ' + first if first else ''}). Give a .ckpt file written by netscope "
                        f"or Lightning.") from None


def resolve_checkpoint(path: str, checkpoint_dir: str | os.PathLike | None = None,
                       root_dir: str | os.PathLike | None = None) -> str:
    """The file ``path`` names: itself, or for Lightning's special names the file Lightning
    would pick (``last``: the newest ``last*.ckpt`` in ``checkpoint_dir``; ``hpc``: the
    highest ``hpc_ckpt_<N>.ckpt`` in ``root_dir``). Registry names are left to Lightning."""
    match path:
        case "last":
            folder = Path(checkpoint_dir) if checkpoint_dir else None
            found = []
            if folder and folder.is_dir():  # Lightning takes the newest: last.ckpt, last-v1.ckpt, ...
                found = sorted(folder.glob("last*.ckpt"), key=lambda p: p.stat().st_mtime)
            if not found:
                where = (f"'{folder}' (--checkpoint.dirpath) has no last*.ckpt" if folder else
                         "a new run starts with an empty checkpoints/ folder, so there is none")
                raise UserError(f"--ckpt_path last names the last checkpoint of the checkpoint folder, but "
                                f"{where}. Give the file, e.g. --ckpt_path runs/<run>/checkpoints/last.ckpt.")
            return str(found[-1])
        case "hpc":
            folder = Path(root_dir or ".")
            numbered = {int(m.group(1)): p for p in (folder.glob("hpc_ckpt_*.ckpt") if folder.is_dir() else [])
                        if (m := re.fullmatch(r"hpc_ckpt_(\d+)\.ckpt", p.name))}
            if not numbered:
                raise UserError(f"--ckpt_path hpc names the checkpoint a SLURM job saves when it is stopped "
                                f"(hpc_ckpt_<N>.ckpt in --trainer.default_root_dir), but '{folder}' has none. "
                                f"Give the file, e.g. --ckpt_path runs/<run>/hpc_ckpt_1.ckpt.")
            return str(numbered[max(numbered)])
        case "best":
            raise UserError("--ckpt_path best names the best checkpoint of a fit run in the same process, "
                            "and each command here is a process of its own. Give the file, e.g. "
                            "--ckpt_path runs/<run>/checkpoints/epoch003-step200.ckpt (a fit keeps its "
                            "best checkpoint beside last.ckpt).")
    return path


def check_checkpoint(path: str, model_class_path: str, checkpoint_dir: str | os.PathLike | None = None,
                     root_dir: str | os.PathLike | None = None) -> tuple[str, dict[str, Any]]:
    """Refuse a checkpoint that is missing, unreadable, unsafe, or of another model class.

    Returns:
        The file to load (Lightning's special names resolved, see :func:`resolve_checkpoint`)
        and the model hyper-parameters it saved.
    """
    if path == _REGISTRY or path.startswith(_REGISTRY + ":"):
        return path, {}
    given, path = path, resolve_checkpoint(path, checkpoint_dir, root_dir)
    name = path if given == path else f"{given} ({path})"
    checkpoint = load_checkpoint(path, name)
    saved = (checkpoint.get(MODEL_CLASS_KEY)
             or checkpoint.get("hyper_parameters", {}).get("_class_path"))  # older checkpoints
    if saved and not same_class(saved, model_class_path):
        raise UserError(
            f"--ckpt_path {name} holds a {saved} model, but the config builds a "
            f"{model_class_path}. Use the config the checkpoint was trained with (its run "
            f"folder has it as config.yaml), or choose the model with --model {saved}.")
    return path, dict(checkpoint.get("hyper_parameters") or {})


def same_class(saved: str, configured: str) -> bool:
    """Whether the class path a checkpoint saved names the configured class.

    Only the configured path is imported (the config already imported it): a name read from
    a checkpoint file is never imported, so a checkpoint cannot make netscope run a module's
    code. The configured class counts under both its paths (``netscope.models.ConvNet`` and
    ``netscope.models.convnet.ConvNet``); a saved path of another layout (an older
    ``models.ConvNet``) is compared by class name."""
    module, _, name = configured.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        paths = {configured, f"{cls.__module__}.{cls.__qualname__}"}
    except (ImportError, AttributeError, ValueError):
        paths = {configured}
    if saved in paths:
        return True
    names_a_module_of_ours = saved.startswith(tuple(p.rsplit(".", 1)[0] + "." for p in paths))
    return not names_a_module_of_ours and saved.rsplit(".", 1)[-1] == name


def checkpoint_step(path: str | os.PathLike) -> int:
    """The global step a checkpoint was written at."""
    return int(load_checkpoint(path).get("global_step", 0))
