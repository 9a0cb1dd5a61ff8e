"""The doctor's rules during training: pure functions over the logged scalar history.

Each rule reads a :class:`core.history.History` (what the diagnostics logged: the same
series a run's ``csv/metrics.csv`` holds) and a little :class:`Context` (task, classes,
layer order), and returns the findings that hold at the latest recorded step. The
``Doctor`` callback runs them on logging steps and epoch ends; :func:`replay` runs them on a
finished run's files, step by step, and finds the same first steps.
"""

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from netscope.core.history import History
from netscope.doctor import curvature
from netscope.doctor.findings import Finding, merge
from netscope.doctor.thresholds import Thresholds


@dataclass
class Context:
    """What the rules need beyond the history.

    Attributes:
        task: ``classification``, ``binary`` or ``regression``.
        num_classes: classes (for the chance loss).
        activations: activation layers, input to output, with their class names.
        weights: weight parameters (matrices and kernels), input to output.
        probe: where activations are measured: ``activations`` (activation modules) or
            ``pre_activations`` (the weight layers' outputs, for activations written as
            functions; see :mod:`doctor.measures`).
        fixed_step: weights whose step size the optimizer sets relative to their norm,
            whatever the gradient (``models.MuonSGD``'s orthogonalized filters move by about
            ``muon_lr`` of their size per step by design): the update-ratio rules, whose
            healthy 1e-3 is a gradient step's, leave them out.
        signal_vanishes: the pre-flight found the gradient vanishing through depth: then
            small steps are its symptom, and ``lr_too_low`` (whose advice, a larger rate,
            would not help) is not judged.
    """

    task: str = "classification"
    num_classes: int | None = 10
    activations: dict[str, str] = field(default_factory=dict)
    weights: list[str] = field(default_factory=list)
    fixed_step: list[str] = field(default_factory=list)
    probe: str = "activations"
    signal_vanishes: bool = False

    @property
    def chance_loss(self) -> float | None:
        """The loss of a uniform guess: ln C, ln 2 for a binary task, none for regression."""
        match self.task:
            case "classification":
                return math.log(self.num_classes) if (self.num_classes or 0) > 1 else None
            case "binary":
                return math.log(2)
            case _:
                return None

    def describe(self, layer: str) -> str:
        """``features.1 (ReLU)``, or the bare name when its kind is unknown."""
        kind = self.activations.get(layer)
        return f"{layer} ({kind})" if kind else layer

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "Context":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in record.items() if k in known})


Rule = Callable[[History, Context, Thresholds, int], list[Finding]]


def recent(history: History, name: str, count: int) -> list[float]:
    """The last ``count`` values of ``name`` (fewer when fewer were logged)."""
    return history.series(name)[1][-count:]


def _persistent(history: History, context: Context, family: str, threshold: float,
                patience: int) -> dict[str, list[float]]:
    """Layers whose last ``patience`` logged values of ``family`` are all >= ``threshold``,
    input to output (the context's order; a CSV's columns are sorted by name)."""
    order = {name: index for index, name in enumerate(context.activations)}
    layers = {}
    for name in history.names(f"{family}/"):
        values = recent(history, name, patience)
        if len(values) == patience and min(values) >= threshold:
            layers[name.removeprefix(f"{family}/")] = values
    return dict(sorted(layers.items(), key=lambda item: order.get(item[0], len(order))))


def _more(layers: dict) -> str:
    return f" (and {len(layers) - 1} later layers)" if len(layers) > 1 else ""


def dead_units(history: History, context: Context, t: Thresholds, step: int) -> list[Finding]:
    """Rectifier layers whose units stay at zero for every sample (AUTOTRAINER's dying ReLU);
    one finding, at the first such layer."""
    layers = _persistent(history, context, "act_dead", t.dead_fraction, t.patience)
    if not layers:
        return []
    layer, values = next(iter(layers.items()))
    return [Finding(
        "dead_units", "warning", layer, step,
        f"{values[-1]:.0%} of the units of {context.describe(layer)}{_more(layers)} output zero "
        f"for every sample: they pass no gradient and have stopped learning; try a smaller "
        f"learning rate, Kaiming init or leaky_relu",
        {"dead_fraction": layers, "threshold": t.dead_fraction})]


def saturated_units(history: History, context: Context, t: Thresholds,
                    step: int) -> list[Finding]:
    """Sigmoid/tanh layers pinned at their asymptotes while the loss is still high."""
    chance, loss = context.chance_loss, history.last("train/loss")
    if chance is not None and loss is not None and loss < t.learned_fraction * chance:
        return []  # it has learned: saturation is its answer, not its obstacle
    layers = _persistent(history, context, "act_saturated", t.saturated_fraction, t.patience)
    if not layers:
        return []
    layer, values = next(iter(layers.items()))
    return [Finding(
        "saturated_units", "warning", layer, step,
        f"{values[-1]:.0%} of the outputs of {context.describe(layer)}{_more(layers)} sit at "
        f"its asymptotes, where its derivative is near zero, so its gradient is gone; try a "
        f"smaller init scale (Xavier), tanh or ReLU, or a smaller learning rate",
        {"saturated_fraction": layers, "train_loss": loss, "threshold": t.saturated_fraction})]


def vanishing_gradients(history: History, context: Context, t: Thresholds,
                        step: int) -> list[Finding]:
    """A weight layer whose relative gradient ‖g‖/‖W‖ is far below the other layers'."""
    weights = context.weights or [n.removeprefix("grad_norm/") for n in history.names("grad_norm/")
                                  if n.endswith(".weight")]
    rows = []
    for name in weights:
        grads = recent(history, f"grad_norm/{name}", t.patience)
        norms = recent(history, f"weight_norm/{name}", t.patience)
        if len(grads) < t.patience or len(norms) < t.patience:
            return []
        rows.append([g / w if w > 0 and math.isfinite(g / w) else math.nan
                     for g, w in zip(grads, norms)])
    if len(rows) < 2:
        return []
    lowest = []
    for column in zip(*rows):
        largest = max((v for v in column if math.isfinite(v)), default=0.0)
        if largest <= 0:
            return []
        ratios = [v / largest if math.isfinite(v) else math.inf for v in column]
        lowest.append(min(range(len(ratios)), key=ratios.__getitem__))
        if ratios[lowest[-1]] >= t.gradient_ratio:
            return []
    index = lowest[-1]
    last = [row[-1] for row in rows]
    return [Finding(
        "vanishing_gradients", "warning", weights[index], step,
        f"the gradient of {weights[index]} is {last[index] / max(last):.1e} times the largest "
        f"layer's (relative to its weights): it barely learns; try Kaiming/Xavier init for the "
        f"activation, a shallower net, batch norm or residual connections",
        {"relative_gradient": dict(zip(weights, last)), "threshold": t.gradient_ratio})]


def exploding_gradients(history: History, context: Context, t: Thresholds,
                        step: int) -> list[Finding]:
    """The total gradient norm grown by orders of magnitude since it was first logged."""
    values = [v for v in history.series("grad_norm/total")[1]]
    if len(values) < 3 or not (math.isfinite(values[0]) and values[0] > 0):
        return []
    if not all(v > t.exploding_growth * values[0] for v in values[-2:]):
        return []
    norms = {n.removeprefix("grad_norm/"): history.last(n) for n in history.names("grad_norm/")
             if n != "grad_norm/total"}
    largest = max(norms, key=lambda n: norms[n] if math.isfinite(norms[n]) else math.inf,
                  default="model")
    return [Finding(
        "exploding_gradients", "warning", largest, step,
        f"the total gradient norm grew from {values[0]:.3g} to {values[-1]:.3g}, largest in "
        f"{largest}: steps this size throw the weights around; try a smaller learning rate or "
        f"gradient clipping (--trainer.gradient_clip_val 1)",
        {"grad_norm_total": [values[0], *values[-2:]], "threshold": t.exploding_growth})]


def judged_weights(weights: list[str], fixed_step: list[str]) -> list[str]:
    """The weights whose update ratios tell the learning rate: all but those whose step the
    optimizer fixes, and none when that leaves only one layer. With the filters on Muon, the
    one left is the head, whose speed a recipe sets on purpose (configs/cifar.yaml's
    first step moves it by 40% of its size, and it trains well): one layer is no median."""
    judged = [name for name in weights if name not in fixed_step]
    return judged if not fixed_step or len(judged) >= 2 else []


def _median_update_ratios(history: History, context: Context, count: int) -> list[float]:
    """The median update ratio over the weight layers at each of the last ``count`` logged
    steps (empty until ``count`` steps were logged)."""
    weights = context.weights or [n.removeprefix("update_ratio/")
                                  for n in history.names("update_ratio/") if n.endswith(".weight")]
    weights = judged_weights(weights, context.fixed_step)
    columns = [recent(history, f"update_ratio/{name}", count) for name in weights]
    columns = [c for c in columns if len(c) == count]
    if not columns:
        return []
    medians = []
    for values in zip(*columns):
        finite = [v for v in values if math.isfinite(v) and v > 0]
        if not finite:
            return []
        medians.append(statistics.median(finite))
    return medians


def learning_rate(history: History, context: Context, t: Thresholds, step: int) -> list[Finding]:
    """Update ratios far outside 1e-3 (DeepDiagnosis's band): too high at the latest logged
    step, or too low for ``patience`` logged steps with a loss that barely moves."""
    high, low = t.update_ratio * t.update_factor, t.update_ratio / t.update_factor
    # One logged step is enough for "too high": at 100x the healthy size each step rewrites a
    # tenth of the weights, and such a phase is often over (units dead, loss stuck) a log later.
    medians = _median_update_ratios(history, context, t.patience)
    latest = medians[-1:] or _median_update_ratios(history, context, 1)
    evidence = {"median_update_ratio": medians or latest, "healthy": t.update_ratio}
    if latest and latest[-1] > high:
        why = curvature.explain(history, t)  # the curvature behind it, when it was measured
        return [Finding(
            "lr_too_high", "warning", "model", step,
            f"each step changes the weights by {latest[-1]:.1%} of their size (healthy: "
            f"about 0.1%): the learning rate is too high"
            + (f"; {why[0]}" if why else "; try 10x smaller"),
            {**evidence, **(why[1] if why else {})})]
    losses = history.series("train/loss")[1]
    if context.signal_vanishes or vanishing_gradients(history, context, t, step):
        return []  # small steps because the gradient vanishes: depth and init, not the rate
    if medians and max(medians) < low and len(losses) >= 2 and losses[0] > 0:
        change = abs(losses[0] - losses[-1]) / losses[0]
        if change < t.stall_fraction:
            return [Finding(
                "lr_too_low", "warning", "model", step,
                f"each step changes the weights by {medians[-1]:.1e} of their size (healthy: "
                f"about 1e-3) and the loss moved {change:.1%}: the learning rate is too low; "
                f"try 10-100x larger", {**evidence, "loss_change": change})]
    return []


def not_learning(history: History, context: Context, t: Thresholds, step: int) -> list[Finding]:
    """The training loss still at the chance loss after ``stall_steps`` steps (AUTOTRAINER)."""
    chance = context.chance_loss
    steps, losses = history.series("train/loss")
    if chance is None or not steps or steps[-1] - steps[0] < t.stall_steps:
        return []
    values = [v for s, v in zip(steps, losses) if s >= steps[-1] - t.stall_steps]
    if len(values) >= t.patience and all(
            math.isfinite(v) and abs(v - chance) <= t.chance_margin * chance for v in values):
        # Which layer moves least: where a plateau usually starts (weak gradients there).
        ratios = {n.removeprefix("update_ratio/"): history.last(n)
                  for n in history.names("update_ratio/") if n.endswith(".weight")}
        ratios = {n: r for n, r in ratios.items() if r is not None and math.isfinite(r)}
        slowest = min(ratios, key=ratios.__getitem__) if ratios else None
        hint = (f"; {slowest} moves least ({ratios[slowest]:.1e} of its size per step, healthy "
                f"about 1e-3)" if slowest else "")
        return [Finding(
            "not_learning", "error", "model", step,
            f"the training loss is still {values[-1]:.3f} after {t.stall_steps} steps, the loss "
            f"of a uniform guess ({chance:.3f}): the network has learned nothing{hint}; look at "
            f"the other findings, the learning rate, and whether the labels match the inputs",
            {"train_loss": values, "chance_loss": chance, "steps": t.stall_steps,
             "update_ratio": ratios})]
    return []


def overfitting(history: History, context: Context, t: Thresholds, step: int) -> list[Finding]:
    """Validation loss above its best for ``overfit_epochs`` epochs (early stopping's
    patience), ending at least ``overfit_rise`` above it, while the training loss kept
    falling."""
    val_steps, val = history.series("val/loss")
    if len(val) <= t.overfit_epochs:
        return []
    best = min(range(len(val)), key=val.__getitem__)
    if len(val) - 1 - best < t.overfit_epochs or not val[-1] > (1 + t.overfit_rise) * val[best]:
        return []  # too soon, or within the validation split's noise
    train_steps, train = history.series("train/loss")
    before = [v for s, v in zip(train_steps, train) if s <= val_steps[best]]
    since = [v for s, v in zip(train_steps, train) if s > val_steps[best]]
    if not before or not since or statistics.mean(since) >= statistics.mean(before[-len(since):]):
        return []
    unstable = curvature.unstable_since(history, val_steps[best], t)
    if unstable is not None:  # swinging past the stability limit: oscillation, not memorization
        median, largest = unstable
        return [Finding(
            "lr_too_high", "warning", "model", step,
            f"the validation loss has risen from its best ({val[best]:.3g}, step "
            f"{val_steps[best]}) to {val[-1]:.3g} while the training loss fell, with the "
            f"sharpness swinging around its stability limit since (median {median:.2f}x, up to "
            f"{largest:.1f}x): the steps oscillate along the sharpest direction (and batch "
            f"norm's statistics with them) rather than the network memorizing; try a learning "
            f"rate {largest:.1f}x smaller or more before regularizing",
            {"val_loss": val[best:], "best_step": val_steps[best],
             "sharpness_over_limit": median, "largest_sharpness_over_limit": largest})]
    return [Finding(
        "overfitting", "warning", "model", step,
        f"the validation loss has risen from its best ({val[best]:.3g}, step {val_steps[best]}) "
        f"to {val[-1]:.3g} over {len(val) - 1 - best} epochs while the training loss fell: the "
        f"network memorizes its training set; try more data or augmentation, weight decay, "
        f"dropout, or stop earlier",
        {"val_loss": val[best:], "best_step": val_steps[best],
         "train_loss_before": statistics.mean(before[-len(since):]),
         "train_loss_since": statistics.mean(since)})]


RULES: tuple[Rule, ...] = (dead_units, saturated_units, vanishing_gradients, exploding_gradients,
                           learning_rate, not_learning, overfitting, curvature.sharpness,
                           curvature.batch_size)


def evaluate(history: History, context: Context, thresholds: Thresholds,
             step: int) -> list[Finding]:
    """Every rule's findings at ``step`` (the latest step recorded in ``history``)."""
    return [finding for rule in RULES for finding in rule(history, context, thresholds, step)]


#: Model-wide states a run can pass through and leave: a plateau, a phase of too large or too
#: small steps, a stretch of rising validation loss.
PASSING: frozenset[str] = frozenset({"not_learning", "lr_too_high", "lr_too_low", "overfitting",
                                     "edge_of_stability", "batch_size_small",
                                     "batch_size_large"})


def settle(findings: list[Finding], history: History, context: Context,
           thresholds: Thresholds) -> list[Finding]:
    """``findings`` at the end of a run: each passing state found during training (step > 0)
    that no longer holds at the last step of ``history`` says so (``evidence["cleared_by_step"]`` and its
    message), so that a run which stalled for two epochs and then learned does not end with
    "the network has learned nothing". It keeps its severity: it happened, and cost steps."""
    if any(f.code == "diverged" for f in findings) or not history:
        return findings  # after a divergence the last values say nothing
    step = max(s for name in history.names() for s in history.series(name)[0])
    holding = {f.key for f in evaluate(history, context, thresholds, step)}
    settled = []
    if any(f.code == "lr_too_high" and f.severity != "info" for f in findings):
        # an unstable phase was found: "healthy at the edge" no longer describes the run
        findings = [f for f in findings if f.code != "edge_of_stability"]
    for f in findings:
        if (f.code in PASSING and f.step > 0 and f.key not in holding
                and "cleared_by_step" not in f.evidence and step > f.step):
            f = replace(f, evidence={**f.evidence, "cleared_by_step": step},
                        message=f"{f.message} (no longer so by step {step})")
        settled.append(f)
    return settled


def truncated(history: History, step: int) -> History:
    """The part of ``history`` recorded at or before ``step``."""
    part = History()
    for name in history.names():
        for s, v in zip(*history.series(name)):
            if s <= step:
                part.record(s, {name: v})
    return part


def replay(history: History, context: Context, thresholds: Thresholds) -> list[Finding]:
    """The findings of a finished run, each at the first logged step where it held."""
    steps = sorted({s for name in history.names() for s in history.series(name)[0]})
    findings: list[Finding] = []
    for step in steps:
        findings = merge(findings, evaluate(truncated(history, step), context, thresholds, step))
    return findings
