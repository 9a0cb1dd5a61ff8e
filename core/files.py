"""Writing a run's files so that a reader never sees half of one."""

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def replace_atomically(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary)`` then move the temporary file onto ``path``.

    ``os.replace`` is atomic on one file system, so a crash or a second process (a study
    runner, a DDP rank) sees the old file or the new one, never a mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically; returns the path."""
    text = json.dumps(data, indent=2, default=str) + "\n"
    return replace_atomically(path, lambda temporary: temporary.write_text(text))


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in ``path``, or ``None`` when there is no such file."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else None
