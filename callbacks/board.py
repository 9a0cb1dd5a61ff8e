"""What netscope's callbacks on one trainer share: the :class:`Board`.

The diagnostics write their latest values on it, the doctor and the divergence guard read
them there and put their findings on it, and the run summary copies the findings and what
the doctor checked into ``metrics.json``. One object, handed to every callback by
:meth:`Board.of`, so no callback reads another's files or attributes.
"""

import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer

from netscope.core.rundir import RunDir
from netscope.doctor.findings import Finding, merge, save_findings

_BOARDS: "weakref.WeakKeyDictionary[Trainer, Board]" = weakref.WeakKeyDictionary()


@dataclass
class Board:
    """The shared state of one trainer's netscope callbacks.

    Attributes:
        run: the run directory the callbacks write into.
        latest: the last value logged of each diagnostic, with the step it was logged at.
        findings: the run's findings so far (the doctor's and the divergence guard's).
        checked: the doctor's checks that ran; ``not_checked``: each check that could
            not run, with why (``metrics.json``'s ``checked`` and ``not_checked``).
    """

    run: RunDir
    latest: dict[str, tuple[int, float]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    not_checked: dict[str, str] = field(default_factory=dict)
    writer: bool = True  # global rank zero: the one process that writes the run's files

    @classmethod
    def of(cls, trainer: Trainer) -> "Board":
        """The trainer's board, made on first use: in a netscope command the lifecycle
        attaches it with the run directory (:meth:`attach`); in a plain Lightning script the
        run's files go to the trainer's log directory (``lightning_logs/version_N``)."""
        board = _BOARDS.get(trainer)
        if board is None:
            folder = trainer.log_dir or trainer.default_root_dir
            board = cls.attach(trainer, RunDir(folder))
        board.writer = trainer.is_global_zero
        return board

    @classmethod
    def attach(cls, trainer: Trainer, run: RunDir) -> "Board":
        """Give ``trainer`` a new board that writes into ``run``."""
        board = _BOARDS[trainer] = cls(run)
        return board

    # --------------------------------------------------------------- diagnostics' values
    def record(self, step: int, metrics: dict[str, float]) -> None:
        """Note the values a diagnostic logged at ``step``."""
        for name, value in metrics.items():
            self.latest[name] = (step, float(value))

    def since(self, seen: dict[str, int], prefixes: tuple[str, ...]) -> dict[str, float]:
        """Values of the names starting with ``prefixes`` logged after the steps in
        ``seen`` (which is updated): what a reader has not looked at yet."""
        fresh = {}
        for name, (step, value) in self.latest.items():
            if name.startswith(prefixes) and seen.get(name, -1) < step:
                seen[name] = step
                fresh[name] = value
        return fresh

    def values(self, prefixes: tuple[str, ...]) -> dict[str, float]:
        """The latest value of every name starting with ``prefixes``."""
        return {n: v for n, (_, v) in self.latest.items() if n.startswith(prefixes)}

    # --------------------------------------------------------------------- findings
    def add_findings(self, new: list[Finding]) -> bool:
        """Merge ``new`` into the findings (see :func:`doctor.findings.merge`) and keep them
        in ``findings.json``; whether anything changed."""
        merged = merge(self.findings, new)
        if merged == self.findings:
            return False
        self.set_findings(merged)
        return True

    def set_findings(self, findings: list[Finding]) -> None:
        """Replace the findings (the doctor's settled list at the end of a fit)."""
        self.findings = list(findings)
        if self.writer:
            Path(self.run.path).mkdir(parents=True, exist_ok=True)
            save_findings(self.run, self.findings)

    def coverage(self) -> dict[str, Any]:
        """``{"checked": [...], "not_checked": {...}}`` for ``metrics.json``."""
        return {"checked": list(self.checked), "not_checked": dict(self.not_checked)}
