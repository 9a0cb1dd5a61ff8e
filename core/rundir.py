"""One directory per run, never reused: ``<root>/<timestamp>-<name>``."""

import os
import re
from datetime import datetime
from pathlib import Path

#: Set by the launching process so that DDP workers it spawns (which re-run the command)
#: join its run directory instead of making their own.
RUN_DIR_ENV = "NETSCOPE_RUN_DIR"


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def create_run_dir(root: str | os.PathLike, name: str) -> Path:
    """Create and return a new, empty directory ``root/<YYYYmmdd-HHMMSS>-<name>[-N]``.

    ``mkdir`` without ``exist_ok`` is atomic, so two runs started in the same second (or
    two processes) never share a directory.
    """
    if os.environ.get("LOCAL_RANK", "0") != "0" and os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stem = f"{datetime.now():%Y%m%d-%H%M%S}-{slug(name)}"
    for attempt in range(1000):
        path = root / (stem if attempt == 0 else f"{stem}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        os.environ[RUN_DIR_ENV] = str(path.resolve())
        return path
    raise RuntimeError(f"could not create a run directory under {root}")
