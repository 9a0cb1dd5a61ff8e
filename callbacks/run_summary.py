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

from netscope.core.files import write_json
from netscope.doctor.findings import read_findings

#: ``running`` from the start of a fit until it ends: a run killed outright (``kill -9``, a
#: lost machine) keeps saying ``running``, with the metrics of its last finished epoch.
Status = Literal["running", "completed", "diverged", "interrupted", "failed"]
FILENAME = "metrics.json"


class RunSummary(Callback):
    """Write ``metrics.json`` into the run directory whenever fit, validate or test ends,
    also when the run fails, is interrupted or is stopped by a divergence guard; during a
    fit, with ``status: running``, when it starts and at every epoch end.

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
        self.running = False
        self.earlier_wall_time = 0.0  # a resumed fit's time before its checkpoint

    @staticmethod
    def of(trainer: Trainer) -> "RunSummary | None":
        """The trainer's RunSummary callback, if it has one."""
        return next((c for c in trainer.callbacks if isinstance(c, RunSummary)), None)

    def mark(self, status: Status, reason: str) -> None:
        """Record how the run ends (used by callbacks that stop it, e.g. a divergence guard)."""
        self.status, self.reason = status, reason

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.ckpt_path is None:  # a resumed fit keeps the checksum of its first start
            self.extra["init_checksum"] = parameter_checksum(pl_module)
        self.running = True
        self.write(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._collect(trainer)
        self.write(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"wall_time_s": self.wall_time(), "extra": self.extra}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.earlier_wall_time = state_dict.get("wall_time_s", 0.0)
        self.extra = {**state_dict.get("extra", {}), **self.extra}

    def wall_time(self) -> float:
        """Seconds of this run so far, a resumed fit's earlier part included."""
        return self.earlier_wall_time + time.monotonic() - self.started

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
                status="running" if self.running and self.status == "completed" else self.status,
                reason=self.reason,
                epoch=trainer.current_epoch,
                global_step=trainer.global_step,
                wall_time_s=self.wall_time(),
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
        self.running = False
        self._collect(trainer)
        self.read_findings(trainer)
        self.write(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self.running = False
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


def read_summary(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's ``metrics.json``, or None when it has none (or half of one)."""
    try:
        return json.loads((Path(run_dir) / FILENAME).read_text())
    except (OSError, ValueError):
        return None


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
    return write_json(Path(run_dir) / FILENAME, summary)
