"""The doctor in a fit: a pre-flight check before the first step, rules on logging steps.

It reads only what the diagnostics put on the trainer (``trainer.callback_metrics``, through
``callbacks.logging_sinks.log_scalars``) and the run's files; it keeps its own history of
those values, so its rules see the same series as ``csv/metrics.csv`` and
``python -m doctor RUN_DIR`` finds the same verdicts afterwards.
"""

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.types import STEP_OUTPUT

from netscope.callbacks.cadence import is_due, logger_step, resolve_interval
from netscope.callbacks.logging_sinks import log_figure, log_findings
from netscope.callbacks.run_summary import one_line
from netscope.core.files import write_json
from netscope.core.history import History
from netscope.doctor.findings import (
    Finding,
    add_findings,
    console_block,
    merge,
    read_findings,
    write_findings,
)
from netscope.doctor.preflight import FILENAME as PREFLIGHT_FILE, Preflight, context_of, run_preflight
from netscope.doctor.rules import Context, evaluate, settle
from netscope.doctor.thresholds import Thresholds
from netscope.figures.signal_propagation import signal_propagation_figure
from netscope.figures.style import save

#: The logged families the rules read (besides ``train/loss``, ``val/loss``).
PREFIXES = ("grad_norm/", "weight_norm/", "update_ratio/", "act_dead/", "act_saturated/",
            "act_std/", "act_mean/")


class Doctor(Callback):
    """Say what is wrong with the run, where, since when and what to try.

    - At the first training batch (before the first optimizer step) the pre-flight check
      (:mod:`doctor.preflight`) runs on that batch through a throw-away copy of the model;
      its numbers go to ``preflight.json``, its figure to ``signal_propagation.png``.
    - On the diagnostics' logging steps and at epoch ends, the rules (:mod:`doctor.rules`)
      run over the values logged so far. No new per-step work.
    - Findings go to ``findings.json`` (``metrics.json`` copies them under ``findings``),
      the console (after the pre-flight and at the end of fit), W&B and TensorBoard.
    """

    def __init__(self, thresholds: Thresholds | None = None, every_n_steps: int | None = None,
                 saturation_margin: float = 0.05, preflight: bool = True) -> None:
        """Args:
            thresholds: what counts as wrong (see :class:`doctor.Thresholds` for sources).
            every_n_steps: evaluate the rules every this many steps; ``None`` (default): the
                trainer's ``log_every_n_steps``, when the diagnostics log.
            saturation_margin: as ``callbacks.ActivationStatistics``'s (for the pre-flight).
            preflight: run the pre-flight check when a fit starts from scratch.
        """
        self.thresholds = thresholds or Thresholds()
        self.every_n_steps = every_n_steps
        self.saturation_margin = saturation_margin
        self.preflight = preflight
        self.check_only = False  # set by ``python main.py check``: stop after the pre-flight
        self.every = 0
        self.context = Context()
        self.history = History()
        self.findings: list[Finding] = []
        self.preflight_done = False
        self.seen: dict[str, Any] = {}  # the last value object recorded, per name

    # ------------------------------------------------------------------ state (resume)
    def state_dict(self) -> dict[str, Any]:
        return {"steps": dict(self.history.steps), "values": dict(self.history.values),
                "findings": [f.to_dict() for f in self.findings],
                "preflight_done": self.preflight_done}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = History()
        for name, steps in state_dict.get("steps", {}).items():
            for step, value in zip(steps, state_dict["values"][name]):
                self.history.record(step, {name: value})
        self.findings = [Finding.from_dict(r) for r in state_dict.get("findings", [])]
        self.preflight_done = bool(state_dict.get("preflight_done", False))

    # ------------------------------------------------------------------------- hooks
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.every = resolve_interval(trainer, self.every_n_steps, "Doctor.every_n_steps")
        self.context = context_of(pl_module)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # the optimizer exists now: it tells which weights' step size it fixes itself
        self.context = context_of(pl_module, trainer.optimizers[0] if trainer.optimizers else None)
        if self.check_only:  # no training: take a batch from the loader and stop
            batch = next(iter(trainer.train_dataloader))
            batch = pl_module._apply_batch_transfer_handler(batch)
            self.run_preflight(trainer, pl_module, batch)
            trainer.should_stop = True

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if not self.preflight_done and trainer.global_step == 0 and self.preflight:
            self.run_preflight(trainer, pl_module, batch)

    @torch.no_grad()
    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule,
                           outputs: STEP_OUTPUT, batch: Any, batch_idx: int) -> None:
        if not is_due(trainer, self.every):
            return
        step = logger_step(trainer)
        values = self.fresh(trainer, PREFIXES)
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            values["train/loss"] = float(loss.detach())
        self.record_and_judge(trainer, step, values)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            # once per epoch, after its validation; the loggers stamp it with this step
            value = trainer.callback_metrics.get("val/loss")
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                self.record_and_judge(trainer, logger_step(trainer), {"val/loss": float(value)})

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.check_only or not trainer.is_global_zero:
            return
        findings = merge(self.findings, read_findings(trainer.default_root_dir))  # + the guard's
        settled = settle(findings, self.history, self.context, self.thresholds)
        if settled != findings:
            findings = settled
            write_findings(trainer.default_root_dir, findings)  # RunSummary copies it at teardown
        rank_zero_info(console_block(findings, f"end of fit, step {logger_step(trainer)}"))
        log_findings(trainer, findings, logger_step(trainer))

    # ----------------------------------------------------------------------- helpers
    def fresh(self, trainer: Trainer, prefixes: tuple[str, ...]) -> dict[str, float]:
        """Values logged since the last look (a new tensor object per logging call)."""
        values = {}
        for name, value in trainer.callback_metrics.items():
            if name.startswith(prefixes) and self.seen.get(name) is not value:
                self.seen[name] = value  # held, so its id is never reused by a new value
                if isinstance(value, torch.Tensor) and value.numel() == 1:
                    values[name] = float(value)
        return values

    def record_and_judge(self, trainer: Trainer, step: int, values: dict[str, float]) -> None:
        self.history.record(step, values)
        merged = merge(self.findings, evaluate(self.history, self.context, self.thresholds, step))
        if merged != self.findings:  # a new finding, or a graver sighting of a known one
            self.findings = merged
            if trainer.is_global_zero:
                add_findings(trainer.default_root_dir, self.findings)

    def run_preflight(self, trainer: Trainer, pl_module: LightningModule, batch: Any) -> None:
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        self.preflight_done = True
        try:
            report = run_preflight(pl_module, optimizer, batch, self.thresholds,
                                   self.saturation_margin, trainer.precision_plugin.forward_context)
        except Exception as error:  # a model the check does not fit must still train
            rank_zero_warn(f"The doctor's pre-flight check was skipped: {one_line(error)}")
            return
        self.findings = merge(self.findings, report.findings)
        if trainer.is_global_zero:
            self.publish_preflight(trainer, report)

    def publish_preflight(self, trainer: Trainer, report: Preflight) -> None:
        run_dir = Path(trainer.default_root_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / PREFLIGHT_FILE, report.to_dict())
        add_findings(run_dir, self.findings)
        rank_zero_info(console_block(report.findings, "pre-flight check, step 0"))
        figure = signal_propagation_figure(report.to_dict())
        if figure is not None:
            path = save(figure, run_dir / "signal_propagation.png")
            log_figure(trainer, "figures/signal_propagation", path, 0)
        if self.check_only:
            log_findings(trainer, report.findings, 0)
