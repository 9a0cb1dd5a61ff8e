"""What the doctor checked, and what it could not check and why.

"No findings" is a claim about the checks that ran. Every verdict carries its coverage:
``checked`` (the checks that ran) and ``not_checked`` (each check that could not run, with
why), in ``metrics.json``, ``preflight.json`` and on the console.

The checks, by name:

- pre-flight (step 0): ``symmetry`` (identical units), ``initial_loss`` (against chance),
  ``signal_propagation`` (vanishing or exploding signal through depth), ``init_dead_units``,
  ``init_saturation``, ``first_step`` (one step's update ratio: the learning rate);
- during training: ``dead_units``, ``saturated_units``, ``vanishing_gradients``,
  ``exploding_gradients``, ``learning_rate``, ``not_learning``, ``overfitting``,
  ``divergence`` (the divergence guard), and with ``callbacks.Curvature`` (off by default)
  ``curvature`` (the sharpness against the stability limit) and ``batch_size`` (the noise
  scale against the batch).
"""

from dataclasses import dataclass, field
from typing import Any

from netscope.core.history import History
from netscope.doctor.findings import counted
from netscope.doctor.rules import Context
from netscope.doctor.thresholds import Thresholds

RECTIFIER_KINDS = ("ReLU", "ReLU6")
SATURATING_KINDS = ("Sigmoid", "Tanh")


@dataclass
class Coverage:
    """The checks that ran (in order) and those that did not, with why."""

    checked: list[str] = field(default_factory=list)
    not_checked: dict[str, str] = field(default_factory=dict)

    def ran(self, name: str) -> None:
        self.not_checked.pop(name, None)
        if name not in self.checked:
            self.checked.append(name)

    def skipped(self, name: str, why: str) -> None:
        if name not in self.checked:
            self.not_checked[name] = why

    def update(self, other: "Coverage") -> "Coverage":
        for name in other.checked:
            self.ran(name)
        for name, why in other.not_checked.items():
            self.skipped(name, why)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"checked": list(self.checked), "not_checked": dict(self.not_checked)}

    @classmethod
    def from_dict(cls, record: dict[str, Any] | None) -> "Coverage":
        record = record or {}
        return cls(list(record.get("checked") or []), dict(record.get("not_checked") or {}))

    def summary(self) -> str:
        """``checked: a, b; not checked: c (why), d (why)`` for the console."""
        parts = [f"checked: {', '.join(self.checked) or 'nothing'}"]
        if self.not_checked:
            parts.append("not checked: " + "; ".join(f"{name} ({why})"
                                                      for name, why in self.not_checked.items()))
        return "; ".join(parts)


@dataclass
class FitFacts:
    """What a fit was, for the reasons a check could not run.

    Attributes:
        steps: optimizer steps the fit took.
        every: the diagnostics' logging interval (``log_every_n_steps``).
        diagnostics: class names of the diagnostic callbacks the trainer had.
        guard: whether a divergence guard watched the fit.
        reasons: why a diagnostic measured nothing for a check (``{"curvature": "no
            stability limit is known for NAdam"}``).
    """

    steps: int
    every: int
    diagnostics: set[str] = field(default_factory=set)
    guard: bool = False
    reasons: dict[str, str] = field(default_factory=dict)


#: Training-time rule -> (the logged family it reads, the callback that logs it, how many
#: logged steps it needs: a threshold name or a number).
_INPUTS: dict[str, list[tuple[str, str, str | int]]] = {
    "dead_units": [("act_dead/", "ActivationStatistics", "patience")],
    "saturated_units": [("act_saturated/", "ActivationStatistics", "patience")],
    "vanishing_gradients": [("grad_norm/", "GradientNorms", "patience"),
                            ("weight_norm/", "WeightNorms", "patience")],
    "exploding_gradients": [("grad_norm/total", "GradientNorms", 3)],
    "learning_rate": [("update_ratio/", "WeightNorms", 1)],
    "curvature": [("sharpness_limit", "Curvature", "patience")],
    "batch_size": [("noise_scale", "Curvature", "noise_patience")],
}

#: How to turn on a producer that is off by default.
_OFF_BY_DEFAULT = {"Curvature": "off by default: add --trainer.callbacks+=Curvature"}


def training_coverage(history: History, context: Context, t: Thresholds,
                      facts: FitFacts) -> Coverage:
    """Which training-time rules could judge this fit's history, and why the others could not."""
    coverage = Coverage()
    for rule, inputs in _INPUTS.items():
        why = _not_applicable(rule, context)
        for family, producer, needed in inputs:
            if why:
                break
            count = max((len(history.series(n)[0]) for n in history.names(family)), default=0)
            needed = getattr(t, needed) if isinstance(needed, str) else needed
            if count >= needed:
                continue
            if count == 0 and facts.steps < max(facts.every, 1):
                why = (f"the fit was {counted(facts.steps, 'step')}, shorter than log_every_n_steps "
                       f"{facts.every}: the diagnostics never logged")
            elif count == 0 and producer not in facts.diagnostics:
                why = _OFF_BY_DEFAULT.get(producer,
                                          f"no {producer} callback logged {family.rstrip('/')}")
            elif count == 0 and rule in facts.reasons:
                why = facts.reasons[rule]
            elif count == 0:
                why = f"nothing was logged under {family}"
            else:
                why = (f"{counted(count, 'logged step')} of {family.rstrip('/')}, fewer than the "
                       f"{needed} it needs")
        coverage.skipped(rule, why) if why else coverage.ran(rule)
    steps, _ = history.series("train/loss")
    if context.chance_loss is None:
        coverage.skipped("not_learning", _no_chance(context))
    elif not steps and facts.steps < max(facts.every, 1):
        coverage.skipped("not_learning", f"the fit was {counted(facts.steps, 'step')}, shorter "
                                         f"than log_every_n_steps {facts.every}: no training "
                                         f"loss was logged")
    elif not steps:
        coverage.skipped("not_learning", "no training loss was logged (training_step returned "
                                         "no loss, or it was never logged)")
    elif steps[-1] - steps[0] < t.stall_steps:
        coverage.skipped("not_learning", f"the training loss was logged over {steps[-1] - steps[0]} "
                                         f"steps, fewer than the {t.stall_steps} it needs")
    else:
        coverage.ran("not_learning")
    validation = len(history.series("val/loss")[0])
    if validation > t.overfit_epochs:
        coverage.ran("overfitting")
    elif validation == 0:
        coverage.skipped("overfitting", "no validation loss was logged (looked for val/loss, "
                                        "val_loss, valid_loss)")
    else:
        coverage.skipped("overfitting", f"{counted(validation, 'validation epoch')}, fewer than "
                                        f"the {t.overfit_epochs + 1} it needs")
    if facts.guard:
        coverage.ran("divergence")
    else:
        coverage.skipped("divergence", "no DivergenceGuard callback")
    return coverage


def _not_applicable(rule: str, context: Context) -> str | None:
    kinds = set(context.activations.values())
    if rule == "saturated_units":
        if context.probe == "pre_activations":
            return ("no activation modules (activations are functions): saturation cannot be "
                    "read from the weight layers' outputs")
        if not kinds & set(SATURATING_KINDS):
            return "no sigmoid or tanh layers"
    if rule == "dead_units" and context.probe == "activations" and not kinds & set(RECTIFIER_KINDS):
        return "no ReLU layers"
    return None


def _no_chance(context: Context) -> str:
    if context.task == "regression":
        return "a regression task has no chance loss to compare with"
    return "the number of classes is unknown (the model and the data declare none)"


def preflight_reasons(context: Context) -> dict[str, str]:
    """Pre-flight checks that cannot apply to this model, with why (see :func:`_not_applicable`)."""
    reasons = {}
    if context.chance_loss is None:
        reasons["initial_loss"] = _no_chance(context)
    for rule, check in (("saturated_units", "init_saturation"), ("dead_units", "init_dead_units")):
        why = _not_applicable(rule, context)
        if why and not (check == "init_dead_units" and context.probe == "pre_activations"):
            reasons[check] = why
    return reasons
