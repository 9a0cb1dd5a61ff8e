"""The doctor in a fit: a pre-flight check before the first step, rules on logging steps.

It reads what the diagnostics logged from the trainer's :class:`~callbacks.board.Board`,
keeps its own history of those values (so its rules see the same series as
``csv/metrics.csv``, and ``python -m doctor RUN_DIR`` finds the same verdicts afterwards), and
says at every verdict what it checked and what it could not check.
"""

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.types import STEP_OUTPUT

from netscope.callbacks.diagnostic import Diagnostic
from netscope.callbacks.logging_sinks import log_figure, log_findings
from netscope.core.compat import logger_step
from netscope.core.errors import one_line
from netscope.core.history import History
from netscope.doctor.coverage import Coverage, FitFacts, training_coverage
from netscope.doctor.findings import Finding, console_block, merge
from netscope.doctor.preflight import Preflight, context_of, run_preflight
from netscope.doctor.rules import Context, evaluate, settle
from netscope.doctor.thresholds import Thresholds
from netscope.figures.signal_propagation import signal_propagation_figure
from netscope.figures.style import save

#: The logged families the rules read (besides the training and validation loss).
PREFIXES = ("grad_norm/", "weight_norm/", "update_ratio/", "act_dead/", "act_saturated/",
            "act_std/", "act_mean/", "sharpness", "noise_scale", "batch_size", "lr")

#: Names users log their validation loss under, in the order looked for.
VALIDATION_LOSS_NAMES = ("val/loss", "val_loss", "valid_loss", "validation_loss", "val/loss_epoch",
                         "val_loss_epoch")


class Doctor(Diagnostic):
    """Say what is wrong with the run, where, since when and what to try; and what could not
    be checked.

    - At the first training batch (before the first optimizer step) the pre-flight check
      (:mod:`doctor.preflight`) runs on that batch through a throw-away copy of the model,
      with the model's own ``training_step`` and the fit's optimizer; its numbers go to
      ``preflight.json``, its figure to ``signal_propagation.png``.
    - On the diagnostics' logging steps and at epoch ends, the rules (:mod:`doctor.rules`)
      run over the values logged so far. No new per-step work. The training loss is what
      ``training_step`` returns, whatever the model logs it as; the validation loss is read
      where the model logs it (see ``VALIDATION_LOSS_NAMES``).
    - Findings and coverage go to the run's findings (``findings.json``; ``metrics.json``
      copies them), the console (after the pre-flight and at the end of fit), W&B and
      TensorBoard.
    """

    def __init__(self, thresholds: Thresholds | None = None, every_n_steps: int | None = None,
                 saturation_margin: float = 0.05, preflight: bool = True,
                 stop_after_preflight: bool = False) -> None:
        """Args:
            thresholds: what counts as wrong (see :class:`doctor.Thresholds` for sources).
            every_n_steps: evaluate the rules every this many steps; ``None`` (default): the
                trainer's ``log_every_n_steps``, when the diagnostics log.
            saturation_margin: as ``callbacks.ActivationStatistics``'s (for the pre-flight).
            preflight: run the pre-flight check when a fit starts from scratch.
            stop_after_preflight: run the pre-flight on the first training batch when the
                fit starts, then stop before any step (``python main.py check``).
        """
        super().__init__(every_n_steps)
        self.thresholds = thresholds or Thresholds()
        self.saturation_margin = saturation_margin
        self.preflight = preflight
        self.stop_after_preflight = stop_after_preflight
        self.context = Context()
        self.history = History()
        self.findings: list[Finding] = []
        self.preflight_done = False
        self.preflight_coverage = Coverage()
        self.seen: dict[str, int] = {}  # per name, the step of the last value read

    # ------------------------------------------------------------------ state (resume)
    def state_dict(self) -> dict[str, Any]:
        return {"steps": dict(self.history.steps), "values": dict(self.history.values),
                "findings": [f.to_dict() for f in self.findings],
                "preflight_done": self.preflight_done,
                "preflight_coverage": self.preflight_coverage.to_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = History()
        for name, steps in state_dict.get("steps", {}).items():
            for step, value in zip(steps, state_dict["values"][name]):
                self.history.record(step, {name: value})
        self.findings = [Finding.from_dict(r) for r in state_dict.get("findings", [])]
        self.preflight_done = bool(state_dict.get("preflight_done", False))
        self.preflight_coverage = Coverage.from_dict(state_dict.get("preflight_coverage"))

    # ------------------------------------------------------------------------- hooks
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self.context = context_of(pl_module, facts=data_facts(trainer))
        if self.findings:  # a resumed fit: what was found before its checkpoint
            self.board.add_findings(self.findings)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # the optimizer exists now: it tells which weights' step size it fixes itself
        self.context = context_of(pl_module, self.optimizer(trainer), data_facts(trainer))
        steps = trainer.estimated_stepping_batches
        if not self.stop_after_preflight and 0 < steps < self.every and trainer.is_global_zero:
            print_block(f"netscope: this fit takes {int(steps)} steps, fewer than "
                        f"log_every_n_steps {self.every}: the training-time diagnostics will not "
                        f"run (the pre-flight check does); lower --trainer.log_every_n_steps to "
                        f"see them.")
        if self.stop_after_preflight:  # no training: take a batch from the loader and stop
            batch = trainer.strategy.batch_to_device(next(iter(trainer.train_dataloader)))
            self.run_preflight(trainer, pl_module, batch)
            trainer.should_stop = True

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if not self.preflight_done and trainer.global_step == 0 and self.preflight:
            self.run_preflight(trainer, pl_module, batch)

    @torch.no_grad()
    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule,
                           outputs: STEP_OUTPUT, batch: Any, batch_idx: int) -> None:
        if not self.is_due(trainer):
            return
        values = self.board.since(self.seen, PREFIXES)
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            values["train/loss"] = float(loss.detach())
        self.record_and_judge(trainer, logger_step(trainer), values)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        # once per epoch, after its validation; the loggers stamp it with this step
        value = validation_loss(trainer.callback_metrics)
        if value is not None:
            self.record_and_judge(trainer, logger_step(trainer), {"val/loss": value})

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.stop_after_preflight:
            return
        findings = merge(self.findings, self.board.findings)  # + the divergence guard's
        findings = settle(findings, self.history, self.context, self.thresholds)
        self.board.set_findings(findings)
        coverage = Coverage().update(self.preflight_coverage).update(
            training_coverage(self.history, self.context, self.thresholds, fit_facts(trainer)))
        self.board.checked, self.board.not_checked = coverage.checked, coverage.not_checked
        if trainer.is_global_zero:
            print_block(console_block(findings, f"end of fit, step {logger_step(trainer)}",
                                      coverage))
            log_findings(trainer, findings, logger_step(trainer))

    # ----------------------------------------------------------------------- helpers
    @staticmethod
    def optimizer(trainer: Trainer) -> torch.optim.Optimizer | None:
        return trainer.optimizers[0] if trainer.optimizers else None

    def record_and_judge(self, trainer: Trainer, step: int, values: dict[str, float]) -> None:
        self.history.record(step, values)
        merged = merge(self.findings, evaluate(self.history, self.context, self.thresholds, step))
        if merged != self.findings:  # a new finding, or a graver sighting of a known one
            self.findings = merged
            self.board.add_findings(self.findings)

    def run_preflight(self, trainer: Trainer, pl_module: LightningModule, batch: Any) -> None:
        self.preflight_done = True
        try:
            report = run_preflight(pl_module, self.optimizer(trainer), batch, self.thresholds,
                                   self.saturation_margin, trainer.precision_plugin.forward_context,
                                   trainer, data_facts(trainer))
        except Exception as error:  # a model the check does not fit must still train
            rank_zero_warn(f"The doctor's pre-flight check was skipped: {one_line(error)}")
            self.preflight_coverage.skipped("preflight", f"it failed: {one_line(error)}")
            return
        self.context = report.context
        self.preflight_coverage = report.coverage
        self.findings = merge(self.findings, report.findings)
        self.board.add_findings(self.findings)
        self.board.checked, self.board.not_checked = (report.coverage.checked,
                                                      report.coverage.not_checked)
        if trainer.is_global_zero:
            self.publish_preflight(trainer, report)

    def publish_preflight(self, trainer: Trainer, report: Preflight) -> None:
        run = self.board.run
        run.write_preflight(report.to_dict())
        print_block(console_block(report.findings, "pre-flight check, step 0", report.coverage))
        figure = signal_propagation_figure(report.to_dict())
        if figure is not None:
            path = save(figure, run.figure("signal_propagation"))
            log_figure(trainer, "figures/signal_propagation", path, 0)
        if self.stop_after_preflight:
            log_findings(trainer, report.findings, 0)


def print_block(text: str) -> None:
    """Print one of the doctor's blocks where the person running the fit reads it."""
    from netscope.callbacks.console import say

    say(text)


def validation_loss(metrics: dict[str, Any]) -> float | None:
    """The epoch's validation loss, under the first of ``VALIDATION_LOSS_NAMES`` logged."""
    for name in VALIDATION_LOSS_NAMES:
        value = metrics.get(name)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            return float(value)
    return None


def data_facts(trainer: Trainer) -> dict[str, Any]:
    """What the trainer's datamodule declares about its task (any datamodule with these
    attributes: netscope's, or a user's)."""
    datamodule = getattr(trainer, "datamodule", None)
    return {key: getattr(datamodule, key) for key in ("task", "num_classes")
            if getattr(datamodule, key, None) is not None}


def fit_facts(trainer: Trainer) -> FitFacts:
    """How long the fit was and which diagnostics watched it."""
    from netscope.callbacks.divergence import DivergenceGuard

    names = {type(c).__name__ for c in trainer.callbacks if isinstance(c, Diagnostic)}
    guard = any(isinstance(c, DivergenceGuard) for c in trainer.callbacks)
    reasons = {}
    for callback in trainer.callbacks:  # a diagnostic that stopped measuring says why
        reasons.update(getattr(callback, "reasons", {}) if isinstance(callback, Diagnostic) else {})
    return FitFacts(steps=trainer.global_step, every=trainer.log_every_n_steps,
                    diagnostics=names, guard=guard, reasons=reasons)
