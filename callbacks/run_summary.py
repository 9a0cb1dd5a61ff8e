"""``metrics.json``: how a run ended and the final value of every scalar it logged."""

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from doctor.findings import read_findings

Status = Literal["completed", "diverged", "interrupted", "failed"]
FILENAME = "metrics.json"


class RunSummary(Callback):
    """Write ``metrics.json`` into the run directory whenever fit, validate or test ends,
    also when the run fails, is interrupted or is stopped by a divergence guard.

    ``findings`` holds the run's ``findings.json`` (the doctor's verdicts); a ``diverged``
    finding there (the divergence guard's) sets ``status: diverged``.

    The file accumulates across stages of one process, so after ``fit`` and the test that
    follows it holds the train, validation and test metrics together.
    """

    def __init__(self) -> None:
        self.status: Status = "completed"
        self.reason: str | None = None
        self.metrics: dict[str, float] = {}
        self.extra: dict[str, Any] = {}
        self.started = time.monotonic()

    @staticmethod
    def of(trainer: Trainer) -> "RunSummary | None":
        """The trainer's RunSummary callback, if it has one."""
        return next((c for c in trainer.callbacks if isinstance(c, RunSummary)), None)

    def mark(self, status: Status, reason: str) -> None:
        """Record how the run ends (used by callbacks that stop it, e.g. a divergence guard)."""
        self.status, self.reason = status, reason

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.extra["init_checksum"] = parameter_checksum(pl_module)

    def _collect(self, trainer: Trainer) -> None:
        for name, value in trainer.callback_metrics.items():
            if name.endswith(("_step", "_epoch")):
                continue  # Lightning's per-step/per-epoch twins of a metric logged both ways
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                value = value.item()
            if isinstance(value, (int, float)):
                self.metrics[name] = float(value)

    def write(self, trainer: Trainer) -> None:
        """Write the file (on global rank zero only)."""
        if trainer.is_global_zero:
            write_summary(
                trainer.default_root_dir,
                status=self.status,
                reason=self.reason,
                epoch=trainer.current_epoch,
                global_step=trainer.global_step,
                wall_time_s=time.monotonic() - self.started,
                metrics=self.metrics,
                extra=self.extra,
            )

    def read_findings(self, trainer: Trainer) -> None:
        """The run's findings (the doctor's and the divergence guard's ``findings.json``);
        a ``diverged`` finding makes the status ``diverged``, its message the reason."""
        findings = read_findings(trainer.default_root_dir)
        self.extra["findings"] = [finding.to_dict() for finding in findings]
        diverged = next((f for f in findings if f.code == "diverged"), None)
        if diverged is not None and self.status == "completed":
            reason = diverged.evidence.get("reason", diverged.message)
            self.mark("diverged", f"step {diverged.step}: {reason}")

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._collect(trainer)
        self.read_findings(trainer)
        self.write(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._collect(trainer)
        self.read_findings(trainer)
        if isinstance(exception, KeyboardInterrupt) or type(exception).__name__ == "SIGTERMException":
            self.mark("interrupted", f"{type(exception).__name__}: stopped by a signal")
        else:
            self.mark("failed", one_line(exception))
        self.write(trainer)


def parameter_checksum(module: torch.nn.Module) -> str:
    """A short checksum of all parameter values: equal checksums, equal weights."""
    digest = hashlib.sha256()
    for name, parameter in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(parameter.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:12]


def one_line(exception: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(exception).strip().splitlines()
    return f"{type(exception).__name__}: {text[0]}" if text else type(exception).__name__


def write_summary(
    run_dir: str | os.PathLike,
    status: Status,
    reason: str | None = None,
    epoch: int = 0,
    global_step: int = 0,
    wall_time_s: float = 0.0,
    metrics: dict[str, float] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``metrics.json`` atomically (a reader never sees half a file); returns its path."""
    summary: dict[str, Any] = {"status": status}
    if status != "completed" and reason:
        summary["reason"] = reason
    summary |= {"epoch": epoch, "global_step": global_step, "wall_time_s": round(wall_time_s, 3)}
    summary |= extra or {}
    for name, value in sorted((metrics or {}).items()):
        # JSON has no NaN/inf; keep the key with null so a reader sees the metric diverged.
        summary[name] = value if math.isfinite(value) else None
    path = Path(run_dir) / FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp{os.getpid()}")
    temporary.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(temporary, path)
    return path
