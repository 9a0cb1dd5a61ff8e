"""``index.json`` in a study folder: which run directory holds which combination.

A second invocation of a study reads it to skip the runs already done; the report reads
it to put each run directory beside the values it was run with.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from netscope.core.files import write_json
from netscope.core.rundir import RunDir

FILENAME = "index.json"
#: Outcomes a second invocation keeps (a diverged run is a result, not an accident).
FINAL_STATUSES = ("completed", "diverged")


@dataclass
class Entry:
    """One combination of a study and its latest attempt."""

    key: str
    label: str
    values: dict[str, Any]
    command: list[str] = field(default_factory=list)
    status: str = "pending"
    reason: str | None = None
    run_dir: str | None = None  # relative to the study folder
    log: str | None = None  # relative to the study folder
    elapsed_s: float | None = None  # the whole process: start-up, fit, test
    threads: int | None = None  # torch's intra-op threads of the run's process


@dataclass
class StudyIndex:
    """The study's name, its combinations in order, and what became of each."""

    study: str
    source: str = ""
    order: list[str] = field(default_factory=list)
    entries: dict[str, Entry] = field(default_factory=dict)
    #: The study's ``metric`` (name and goal), which the report tests settings on.
    metric: dict[str, str] = field(default_factory=dict)
    #: One record per invocation that ran something: runs, jobs, threads, wall time.
    sessions: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, folder: Path, study: str = "") -> "StudyIndex":
        """The folder's index, or an empty one for ``study`` when there is none yet."""
        path = folder / FILENAME
        if not path.exists():
            return cls(study=study)
        data = json.loads(path.read_text())
        entries = {key: Entry(**entry) for key, entry in data.get("entries", {}).items()}
        return cls(study=data.get("study", study), source=data.get("source", ""),
                   order=data.get("order", list(entries)), entries=entries,
                   metric=data.get("metric", {}), sessions=data.get("sessions", []))

    def save(self, folder: Path) -> None:
        """Write the index atomically (an interrupted study never leaves half a file)."""
        data = {"study": self.study, "source": self.source, "metric": self.metric,
                "sessions": self.sessions, "order": self.order,
                "entries": {key: asdict(entry) for key, entry in self.entries.items()}}
        write_json(folder / FILENAME, data)

    def ordered(self) -> list[Entry]:
        """The entries of the latest expansion of the study, in its order."""
        return [self.entries[key] for key in self.order if key in self.entries]


def is_final(entry: Entry | None, folder: Path) -> bool:
    """Whether ``entry`` ended in a final outcome that its run directory still confirms
    (a deleted or half-written run directory is run again)."""
    if entry is None or entry.status not in FINAL_STATUSES or not entry.run_dir:
        return False
    return read_summary(folder / entry.run_dir).get("status") in FINAL_STATUSES


def done_earlier(entry: Entry | None, folder: Path, command: list[str]) -> bool:
    """Whether ``entry`` finished earlier, with the same command line (so the same values
    and overrides), and its run directory still confirms a final outcome (a deleted or
    half-written run directory is run again)."""
    return entry is not None and entry.command == command and is_final(entry, folder)


def read_summary(run_dir: Path) -> dict[str, Any]:
    """A run directory's ``metrics.json``, or ``{}`` when it has none (or an unreadable one)."""
    return RunDir(run_dir).summary() or {}
