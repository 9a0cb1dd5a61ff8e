"""One directory per run, never reused except by the fit that resumes it:
``<root>/<timestamp>-<name>``."""

import os
import re
from datetime import datetime
from pathlib import Path

from netscope.core.errors import UserError

#: The one place a run directory travels through the environment. Under DDP, Lightning
#: starts the other ranks by running the user's command again in new processes; they
#: cannot be handed a Python object, and must join the directory rank 0 created rather
#: than make their own. Nothing outside this module reads or writes it.
_RUN_DIR_ENV = "NETSCOPE_RUN_DIR"


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def create_run_dir(root: str | os.PathLike, name: str) -> Path:
    """Create and return a new, empty directory ``root/<YYYYmmdd-HHMMSS>-<name>[-N]``.

    ``mkdir`` without ``exist_ok`` is atomic, so two runs started in the same second (or
    two processes) never share a directory. A DDP worker joins its launcher's directory.

    Raises:
        UserError: ``root`` cannot be created or written to.
    """
    if _is_ddp_worker() and os.environ.get(_RUN_DIR_ENV):
        return Path(os.environ[_RUN_DIR_ENV])
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        stem = f"{datetime.now():%Y%m%d-%H%M%S}-{slug(name)}"
        for attempt in range(1000):
            path = root / (stem if attempt == 0 else f"{stem}-{attempt}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return join_run_dir(path)
    except OSError as error:
        raise UserError(
            f"Cannot create a run directory under '{root}' ({error.strerror or error}). "
            f"Choose a folder you can write to with --trainer.default_root_dir."
        ) from None
    raise UserError(f"Could not create a new run directory under '{root}': 1000 runs named "
                    f"'{stem}' already exist. Choose another --run_name.")


def join_run_dir(path: Path) -> Path:
    """Make ``path`` the run directory of this command (and of the DDP workers it starts)."""
    if not _is_ddp_worker():
        os.environ[_RUN_DIR_ENV] = str(Path(path).resolve())
    return Path(path)


def run_dir_of_checkpoint(ckpt_path: str | os.PathLike) -> Path | None:
    """The run directory a checkpoint belongs to (``<run>/checkpoints/<file>.ckpt`` beside
    ``<run>/config.yaml``), or None for a checkpoint kept elsewhere."""
    folder = Path(ckpt_path).resolve().parent
    if folder.name == "checkpoints" and (folder.parent / "config.yaml").is_file():
        return folder.parent
    return None


def _is_ddp_worker() -> bool:
    """Whether this process is a DDP rank other than the one the user started."""
    return os.environ.get("LOCAL_RANK", "0") != "0"
