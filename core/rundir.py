"""The run directory and the one owner of its files: :class:`RunDir`.

Everything one command writes lives in one directory, ``<root>/<YYYYmmdd-HHMMSS>-<name>``,
never reused except by the fit that resumes it. :class:`RunDir` knows every file's name and
is the only reader and writer of the run's records: callbacks, the doctor, figures, studies
and benchmarks go through it, so a file's name and format are defined once.

What a run directory holds (the contract's "Run directory"):

- ``config.yaml``: the resolved config, runnable again with ``--config``;
- ``metrics.json``: how the run ended and its final metrics (:meth:`RunDir.write_summary`);
- ``findings.json``: the doctor's and the divergence guard's findings, as records;
- ``preflight.json``: the doctor's pre-flight numbers; ``layers.json``: the model's layers;
- ``csv/metrics.csv``: the scalar history (Lightning's CSVLogger; read by :meth:`history`);
- ``histograms.jsonl``: the histograms the diagnostics took, one record per line;
- ``checkpoints/``, the figures (``<name>.png``), test reports, ``predictions.csv``,
  ``model.onnx`` and ``parity.json`` (export), and the W&B run under ``wandb/``.
"""

import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from netscope.core.errors import UserError
from netscope.core.files import replace_atomically, write_json
from netscope.core.history import History, read_history

#: The one place a run directory travels through the environment. Under DDP, Lightning
#: starts the other ranks by running the user's command again in new processes; they
#: cannot be handed a Python object, and must join the directory rank 0 created rather
#: than make their own. Nothing outside this module reads or writes it.
_RUN_DIR_ENV = "NETSCOPE_RUN_DIR"


class RunDir:
    """One run's directory: the name, reader and writer of each of its files.

    Readers return ``None`` (or an empty value) for a file that is missing or half
    written; writers replace a file atomically, so a reader never sees half of one.
    """

    CONFIG: ClassVar[str] = "config.yaml"
    SUMMARY: ClassVar[str] = "metrics.json"
    FINDINGS: ClassVar[str] = "findings.json"
    PREFLIGHT: ClassVar[str] = "preflight.json"
    LAYERS: ClassVar[str] = "layers.json"
    PARITY: ClassVar[str] = "parity.json"
    HISTORY: ClassVar[str] = "csv/metrics.csv"
    HISTOGRAMS: ClassVar[str] = "histograms.jsonl"
    CHECKPOINTS: ClassVar[str] = "checkpoints"
    LAST_CHECKPOINT: ClassVar[str] = "checkpoints/last.ckpt"
    ONNX: ClassVar[str] = "model.onnx"
    WANDB: ClassVar[str] = "wandb"
    #: Lightning's CSVLogger writes ``<save_dir>/<name>/metrics.csv`` (``version=""``).
    CSV_LOGGER_NAME: ClassVar[str] = "csv"
    #: What a resumed fit rewrites as it starts (kept, to be put back if it is refused).
    RESUME_REWRITES: ClassVar[tuple[str, ...]] = (CONFIG, SUMMARY, HISTORY, "csv/hparams.yaml")

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    def file(self, name: str) -> Path:
        """The path of one of the run's files (a name above, or a figure's or report's)."""
        return self.path / name

    def figure(self, name: str) -> Path:
        """Where the figure ``name`` (``activations``, ``signal_propagation``, ...) is saved."""
        return self.path / f"{name}.png"

    def report(self, prefix: str, kind: str) -> Path:
        """An evaluation report's CSV: ``<prefix>_per_class.csv``, ``<prefix>_confusion_matrix.csv``."""
        return self.path / f"{prefix}_{kind}.csv"

    # ------------------------------------------------------------------------ readers
    def is_run(self) -> bool:
        """Whether this looks like a netscope run directory (it holds any of its records)."""
        return any(self.file(name).exists()
                   for name in (self.SUMMARY, self.HISTORY, self.PREFLIGHT, self.FINDINGS))

    def summary(self) -> dict[str, Any] | None:
        """``metrics.json``, or ``None`` when there is none (or half of one)."""
        return self._read_json(self.SUMMARY)

    def findings(self) -> list[dict[str, Any]]:
        """The finding records of ``findings.json`` (empty when there is none)."""
        return list(self._read_json(self.FINDINGS) or [])

    def preflight(self) -> dict[str, Any] | None:
        """``preflight.json``, or ``None`` when the pre-flight check did not run."""
        return self._read_json(self.PREFLIGHT)

    def layers(self) -> dict[str, dict[str, str]]:
        """``layers.json`` (``{"activations": {...}, "weights": {...}}``), or ``{}``."""
        return self._read_json(self.LAYERS) or {}

    def history(self) -> History:
        """The scalar history in ``csv/metrics.csv`` (empty when there is none)."""
        path = self.history_file()
        return read_history(path) if path is not None else History()

    def has_history(self) -> bool:
        return self.history_file() is not None

    def history_file(self) -> Path | None:
        """Where the history is: netscope's ``csv/metrics.csv``, or the ``metrics.csv`` a
        plain Lightning script's CSVLogger writes into its log directory (the run's folder)."""
        for name in (self.HISTORY, "metrics.csv"):
            if self.file(name).is_file():
                return self.file(name)
        return None

    def histograms(self) -> list[dict[str, Any]]:
        """The histogram records of ``histograms.jsonl``, in the order taken."""
        path = self.file(self.HISTOGRAMS)
        if not path.is_file():
            return []
        records = []
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:  # a line cut off by a killed process
                continue
        return records

    def config(self) -> dict[str, Any] | None:
        """The resolved ``config.yaml`` as a mapping, or ``None``."""
        import yaml

        path = self.file(self.CONFIG)
        try:
            return yaml.safe_load(path.read_text()) or {} if path.is_file() else None
        except yaml.YAMLError:
            return None

    # ------------------------------------------------------------------------ writers
    def write_summary(self, summary: dict[str, Any]) -> Path:
        return write_json(self.file(self.SUMMARY), summary)

    def write_findings(self, records: list[dict[str, Any]]) -> Path:
        return write_json(self.file(self.FINDINGS), records)

    def write_preflight(self, report: dict[str, Any]) -> Path:
        return write_json(self.file(self.PREFLIGHT), report)

    def write_layers(self, layers: dict[str, dict[str, str]]) -> Path:
        return write_json(self.file(self.LAYERS), layers)

    def write_parity(self, parity: dict[str, Any]) -> Path:
        return write_json(self.file(self.PARITY), parity)

    def write_config(self, text: str) -> Path:
        return replace_atomically(self.file(self.CONFIG), lambda tmp: tmp.write_text(text))

    def append_histograms(self, records: list[dict[str, Any]]) -> None:
        """Add histogram records to ``histograms.jsonl`` (one JSON object per line)."""
        if not records:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        with self.file(self.HISTOGRAMS).open("a") as stream:
            stream.writelines(json.dumps(record) + "\n" for record in records)

    def snapshot(self, names: tuple[str, ...]) -> dict[Path, bytes]:
        """The bytes of those of ``names`` that exist, to put back with :meth:`restore`."""
        return {self.file(n): self.file(n).read_bytes() for n in names if self.file(n).is_file()}

    @staticmethod
    def restore(snapshot: dict[Path, bytes]) -> None:
        for path, content in snapshot.items():
            path.write_bytes(content)

    def _read_json(self, name: str) -> Any:
        try:
            return json.loads(self.file(name).read_text())
        except (OSError, ValueError):
            return None

    # ----------------------------------------------------------------- where runs live
    @classmethod
    def create(cls, root: str | os.PathLike, name: str) -> "RunDir":
        """Create and return a new, empty directory ``root/<YYYYmmdd-HHMMSS>-<name>[-N]``.

        ``mkdir`` without ``exist_ok`` is atomic, so two runs started in the same second (or
        two processes) never share a directory. A DDP worker joins its launcher's directory.

        Raises:
            UserError: ``root`` cannot be created or written to.
        """
        if _is_ddp_worker() and os.environ.get(_RUN_DIR_ENV):
            return cls(os.environ[_RUN_DIR_ENV])
        root = Path(root)
        stem = f"{datetime.now():%Y%m%d-%H%M%S}-{slug(name)}"
        try:
            root.mkdir(parents=True, exist_ok=True)
            for attempt in range(1000):
                path = root / (stem if attempt == 0 else f"{stem}-{attempt}")
                try:
                    path.mkdir()
                except FileExistsError:
                    continue
                return cls.join(path)
        except OSError as error:
            raise UserError(
                f"Cannot create a run directory under '{root}' ({error.strerror or error}). "
                f"Choose a folder you can write to with --trainer.default_root_dir."
            ) from None
        raise UserError(f"Could not create a new run directory under '{root}': 1000 runs named "
                        f"'{stem}' already exist. Choose another --run_name.")

    @classmethod
    def join(cls, path: str | os.PathLike) -> "RunDir":
        """Make ``path`` the run directory of this command (and of the DDP workers it starts)."""
        if not _is_ddp_worker():
            os.environ[_RUN_DIR_ENV] = str(Path(path).resolve())
        return cls(path)

    @classmethod
    def of_checkpoint(cls, ckpt_path: str | os.PathLike) -> "RunDir | None":
        """The run a checkpoint belongs to (``<run>/checkpoints/<file>.ckpt`` beside
        ``<run>/config.yaml``), or ``None`` for a checkpoint kept elsewhere."""
        folder = Path(ckpt_path).resolve().parent
        if folder.name == cls.CHECKPOINTS and (folder.parent / cls.CONFIG).is_file():
            return cls(folder.parent)
        return None


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def _is_ddp_worker() -> bool:
    """Whether this process is a DDP rank other than the one the user started."""
    return os.environ.get("LOCAL_RANK", "0") != "0"
