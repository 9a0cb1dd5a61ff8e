"""The doctor's verdicts: one :class:`Finding` per problem, in the contract's shape.

During a fit the doctor and the divergence guard add theirs to the trainer's shared
:class:`callbacks.board.Board`, which keeps them in the run's ``findings.json``;
``metrics.json`` copies them under ``findings``, and ``python -m doctor RUN_DIR`` prints them.
"""

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from netscope.core.rundir import RunDir

Code = Literal[
    "bad_initial_loss", "vanishing_gradients", "exploding_gradients", "dead_units",
    "saturated_units", "symmetry", "lr_too_high", "lr_too_low", "not_learning",
    "overfitting", "diverged",
]
Severity = Literal["error", "warning", "info"]

_RANK: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


@dataclass
class Finding:
    """One problem: what (``code``), how bad, where, since when, the numbers, one sentence."""

    code: Code
    severity: Severity
    where: str
    step: int
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """Identity of a finding across evaluations: the same problem at the same place."""
        return self.code, self.where

    def to_dict(self) -> dict[str, Any]:
        """The contract's record (non-finite numbers become strings: JSON has no NaN)."""
        record = asdict(self)
        record["evidence"] = _jsonable(self.evidence)
        return {k: record[k] for k in ("code", "severity", "where", "step", "evidence", "message")}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "Finding":
        return cls(code=record["code"], severity=record["severity"], where=record["where"],
                   step=int(record["step"]), message=record["message"],
                   evidence=dict(record.get("evidence") or {}))

    def line(self) -> str:
        """One console line: ``warning  dead_units  features.1  step 49: ...``."""
        return f"  {self.severity:<7}  {self.code:<19}  {self.where}  (step {self.step}): {self.message}"


def merge(known: list[Finding], new: list[Finding]) -> list[Finding]:
    """``known`` plus the findings of ``new`` not already known by :attr:`Finding.key`
    (the first sighting keeps its step; a graver sighting, e.g. a warning after the
    pre-flight's info, replaces it), ordered by severity, then step."""
    merged = {finding.key: finding for finding in known}
    for finding in new:
        seen = merged.get(finding.key)
        if seen is None or _RANK[finding.severity] < _RANK[seen.severity]:
            merged[finding.key] = finding
        elif explains(finding, seen):
            merged[finding.key] = replace(
                seen, message=f"{seen.message}; later (step {finding.step}): {finding.message}",
                evidence={**seen.evidence, "later": {"step": finding.step, **finding.evidence}})
    return sorted(merged.values(), key=lambda f: (_RANK[f.severity], f.step))


#: Evidence a later sighting of a known finding adds to it (the curvature behind a learning
#: rate first judged from one step's size).
EXPLAINING = ("sharpness_over_limit",)


def explains(new: Finding, seen: Finding) -> bool:
    """Whether ``new``, a later sighting of ``seen`` at its severity, brings evidence it lacks."""
    return (new.step > seen.step and new.severity == seen.severity and "later" not in seen.evidence
            and any(k in new.evidence and k not in seen.evidence for k in EXPLAINING))


def console_block(findings: list[Finding], title: str, coverage: Any = None) -> str:
    """The console block: a title line, one line per finding, and what was checked and not
    (``coverage``: a :class:`doctor.coverage.Coverage`). "No findings" is only ever said
    together with the checks it is about."""
    covered = f"  ({coverage.summary()})" if coverage is not None else ""
    if not findings:
        if coverage is not None and not coverage.checked:
            return f"Doctor ({title}): nothing could be checked{covered}"
        return f"Doctor ({title}): no findings{covered}"
    counts = ", ".join(counted(sum(f.severity == s for f in findings), s) for s in _RANK
                       if any(f.severity == s for f in findings))
    lines = [f"Doctor ({title}): {counts}", *(f.line() for f in findings)]
    if coverage is not None:
        lines.append(f"  {coverage.summary()}")
    return "\n".join(lines)


def gate(findings: list[Finding], fail_on: str) -> bool:
    """Whether ``findings`` hold one at ``fail_on``'s severity or graver (``never``: no)."""
    if fail_on not in _RANK:
        return False
    return any(_RANK[f.severity] <= _RANK[fail_on] for f in findings)


def read_findings(run: RunDir) -> list[Finding]:
    """The findings a run recorded in its ``findings.json`` (empty when there is none)."""
    return [Finding.from_dict(record) for record in run.findings()]


def save_findings(run: RunDir, findings: list[Finding]) -> None:
    """Replace the run's ``findings.json`` with ``findings``."""
    run.write_findings([f.to_dict() for f in findings])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.4g}") if math.isfinite(value) else str(value)
    return value


def counted(number: int, noun: str) -> str:
    """``1 step``, ``2 steps``; ``3 info`` (a mass noun keeps its form)."""
    return f"{number} {noun}{'s' if number != 1 and noun != 'info' else ''}"
