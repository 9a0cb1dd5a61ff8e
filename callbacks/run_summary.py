"""``metrics.json``: how a run ended and the final value of every scalar it logged."""

import hashlib
import math
import time
from typing import Any, Literal

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from netscope.callbacks.board import Board
from netscope.core.errors import one_line
from netscope.core.rundir import RunDir

#: ``running`` from the start of a fit until it ends: a run killed outright (``kill -9``, a
#: lost machine) keeps saying ``running``, with the metrics of its last finished epoch.
Status = Literal["running", "completed", "diverged", "interrupted", "failed"]


class RunSummary(Callback):
    """Write ``metrics.json`` into the run directory whenever fit, validate or test ends,
    also when the run fails, is interrupted or is stopped by a divergence guard; during a
    fit, with ``status: running``, when it starts and at every epoch end.

    ``findings``, ``checked`` and ``not_checked`` are the doctor's (from the trainer's
    :class:`~callbacks.board.Board`); a ``diverged`` finding (the divergence guard's) sets
    ``status: diverged``.

    The file accumulates across stages of one process, so after ``fit`` and the test that
    follows it holds the train, validation and test metrics together.

    Args:
        started: when the command started (``time.monotonic()``), so that ``wall_time_s`` is
            the command's time; default: when this callback was made.
    """

    def __init__(self, started: float | None = None) -> None:
        self.status: Status = "completed"
        self.reason: str | None = None
        self.metrics: dict[str, float] = {}
        self.extra: dict[str, Any] = {}
        self.started = time.monotonic() if started is None else started
        self.running = False
        self.earlier_wall_time = 0.0  # a resumed fit's time before its checkpoint
        self.restored_wall_time = 0.0  # the wall time a loaded checkpoint recorded
        self.board: Board | None = None

    def count_from(self, started: float) -> None:
        """Count ``wall_time_s`` from ``started`` (``time.monotonic()``): the command's start."""
        self.started = started

    @staticmethod
    def of(trainer: Trainer) -> "RunSummary | None":
        """The trainer's RunSummary callback, if it has one."""
        return next((c for c in trainer.callbacks if isinstance(c, RunSummary)), None)

    def mark(self, status: Status, reason: str) -> None:
        """Record how the run ends (used by callbacks that stop it, e.g. a divergence guard)."""
        self.status, self.reason = status, reason

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.board = Board.of(trainer)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.ckpt_path is None:  # a resumed fit keeps the checksum of its first start
            self.extra["init_checksum"] = parameter_checksum(pl_module)
        self.running = True
        self.write(trainer)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.ckpt_path is not None:  # resumed (restored by now): its earlier time counts
            self.earlier_wall_time = self.restored_wall_time

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._collect(trainer)
        self.write(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"wall_time_s": self.wall_time(), "extra": self.extra}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Only a resumed fit adds the checkpoint's time (on_fit_start): the test after a fit
        # loads its best checkpoint too, and counting that time again doubled wall_time_s.
        self.restored_wall_time = state_dict.get("wall_time_s", 0.0)
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
            board = self.board or Board.of(trainer)
            board.run.write_summary(summary_record(
                status="running" if self.running and self.status == "completed" else self.status,
                reason=self.reason,
                epoch=trainer.current_epoch,
                global_step=trainer.global_step,
                wall_time_s=self.wall_time(),
                metrics=self.metrics,
                extra={**self.extra, **board.coverage()},
            ))

    def read_findings(self, trainer: Trainer) -> None:
        """The run's findings (the doctor's and the divergence guard's); a ``diverged``
        finding makes the status ``diverged``, its message the reason."""
        findings = (self.board or Board.of(trainer)).findings
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
        if is_interruption(exception):
            self.mark("interrupted", f"{type(exception).__name__}: stopped by a signal")
        else:
            self.mark("failed", one_line(exception))
        self.write(trainer)


def is_interruption(exception: BaseException) -> bool:
    """Ctrl+C, or Lightning's SIGTERM handling (a scheduler stopping the job)."""
    return isinstance(exception, KeyboardInterrupt) or type(exception).__name__ == "SIGTERMException"


def parameter_checksum(module: torch.nn.Module) -> str:
    """A short checksum of all parameter values: equal checksums, equal weights."""
    digest = hashlib.sha256()
    for name, parameter in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(parameter.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:12]


def summary_record(
    status: Status,
    reason: str | None = None,
    epoch: int = 0,
    global_step: int = 0,
    wall_time_s: float = 0.0,
    metrics: dict[str, float] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``metrics.json``'s content: how the run ended, then the extras, then every metric."""
    summary: dict[str, Any] = {"status": status}
    if status != "completed" and reason:
        summary["reason"] = reason
    summary |= {"epoch": epoch, "global_step": global_step, "wall_time_s": round(wall_time_s, 3)}
    summary |= extra or {}
    for name, value in sorted((metrics or {}).items()):
        # JSON has no NaN/inf; keep the key with null so a reader sees the metric diverged.
        summary[name] = value if math.isfinite(value) else None
    return summary


def record_failure(run: RunDir, error: BaseException, reason: str) -> None:
    """Say in ``metrics.json`` why the command failed, unless the run already said how it
    ended (an interruption, a divergence): a failed command never leaves an empty run
    directory, nor one that claims to be running."""
    summary = run.summary() or {}
    if summary.get("status") in (None, "running"):
        status: Status = "interrupted" if is_interruption(error) else "failed"
        run.write_summary(summary_record(status=status, reason=reason,
                                         epoch=summary.get("epoch", 0),
                                         global_step=summary.get("global_step", 0),
                                         wall_time_s=summary.get("wall_time_s", 0.0),
                                         extra={k: v for k, v in summary.items()
                                                if k not in ("status", "reason", "epoch",
                                                             "global_step", "wall_time_s")}))
