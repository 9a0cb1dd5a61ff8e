"""The doctor's verdicts: one :class:`Finding` per problem, in the contract's shape.

A run keeps its findings in ``findings.json`` in its run directory: the doctor and the
divergence guard each add theirs (:func:`add_findings`), ``metrics.json`` copies them under
``findings``, and ``python -m doctor RUN_DIR`` prints them. A file, not an attribute, so no
callback reads another's state.
"""

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from netscope.core.files import write_json

Code = Literal[
    "bad_initial_loss", "vanishing_gradients", "exploding_gradients", "dead_units",
    "saturated_units", "symmetry", "lr_too_high", "lr_too_low", "not_learning",
    "overfitting", "diverged",
]
Severity = Literal["error", "warning", "info"]

FILENAME = "findings.json"
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
    return sorted(merged.values(), key=lambda f: (_RANK[f.severity], f.step))


def is_healthy(findings: list[Finding]) -> bool:
    """No ``warning`` or ``error``."""
    return all(finding.severity == "info" for finding in findings)


def console_block(findings: list[Finding], title: str) -> str:
    """The console block: a title line, then one line per finding, or ``no findings``."""
    if not findings:
        return f"Doctor ({title}): no findings"
    counts = ", ".join(f"{sum(f.severity == s for f in findings)} {s}" for s in _RANK
                       if any(f.severity == s for f in findings))
    return "\n".join([f"Doctor ({title}): {counts}", *(f.line() for f in findings)])


def read_findings(run_dir: str | os.PathLike) -> list[Finding]:
    """The findings in ``<run_dir>/findings.json`` (empty when there is none)."""
    path = Path(run_dir) / FILENAME
    if not path.exists():
        return []
    return [Finding.from_dict(record) for record in json.loads(path.read_text())]


def add_findings(run_dir: str | os.PathLike, findings: list[Finding]) -> list[Finding]:
    """Merge ``findings`` into ``<run_dir>/findings.json`` (written atomically); return all."""
    merged = merge(read_findings(run_dir), findings)
    write_json(Path(run_dir) / FILENAME, [f.to_dict() for f in merged])
    return merged


def write_findings(run_dir: str | os.PathLike, findings: list[Finding]) -> None:
    """Replace ``<run_dir>/findings.json`` with ``findings`` (written atomically)."""
    write_json(Path(run_dir) / FILENAME, [f.to_dict() for f in findings])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.4g}") if math.isfinite(value) else str(value)
    return value
