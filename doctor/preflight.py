"""The pre-flight check: one training batch through a throw-away copy of the model, before
the first optimizer step.

It measures what is wrong before any compute is spent: the initial loss against the chance
loss, the signal through depth (forward activation std and backward gradient per measured
layer: Brock et al. 2021's signal propagation plot), dead and saturated units, units with
identical weights, and the update ratio of one step at the configured learning rate.

It works on any model: the loss is the model's own (its ``training_step`` on the batch, with
logging turned off), the step the fit's own optimizer's (a copy of it), and the layers those
the diagnostics measure (:mod:`doctor.measures`, the same functions). Everything runs on a
deep copy, and the random number generators are restored afterwards, so a run with the check
trains exactly as without it. What it could not check it says (:class:`Coverage`).
"""

import contextlib
import copy
import inspect
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from netscope.core.compat import without_hooks
from netscope.doctor.coverage import Coverage, preflight_reasons
from netscope.doctor.findings import Finding
from netscope.doctor.measures import dead_rows, output_statistics, probe_layers, update_ratio
from netscope.doctor.rules import Context, judged_weights
from netscope.doctor.thresholds import Thresholds
from netscope.models.wrapped import inspected


@dataclass
class Preflight:
    """The check's numbers (written to ``preflight.json``), its findings and coverage."""

    context: Context
    loss: float | None = None
    layers: list[dict[str, Any]] = field(default_factory=list)  # measured layers, in order
    weights: list[dict[str, Any]] = field(default_factory=list)  # weight parameters, in order
    findings: list[Finding] = field(default_factory=list)
    optimizer: str | None = None  # the class of the optimizer that made the one step
    proportional_step: bool = False  # its step is lr x gradient (see PROPORTIONAL)
    coverage: Coverage = field(default_factory=Coverage)

    def to_dict(self) -> dict[str, Any]:
        return {"context": self.context.to_dict(), "loss": self.loss,
                "chance_loss": self.context.chance_loss, "layers": self.layers,
                "weights": self.weights, "optimizer": self.optimizer,
                "proportional_step": self.proportional_step,
                "findings": [f.to_dict() for f in self.findings], **self.coverage.to_dict()}


def context_of(module: nn.Module, optimizer: torch.optim.Optimizer | None = None,
               facts: dict[str, Any] | None = None) -> Context:
    """The rules' context for any model: task and classes (the model's, else the data's
    ``facts``), the measured layers in order, and the weights whose step size ``optimizer``
    fixes (param groups marked ``orthogonalize``)."""
    facts = facts or {}
    target = inspected(module)
    fixed = {id(p) for group in (optimizer.param_groups if optimizer is not None else [])
             if group.get("orthogonalize") for p in group["params"]}
    probe, layers = probe_layers(target)
    task = getattr(module, "task", None) or facts.get("task")
    classes = getattr(module, "num_classes", None) or facts.get("num_classes")
    if task is None and classes:
        task = "classification"
    return Context(
        task=str(task) if task else None,
        num_classes=int(classes) if classes else None,
        activations={name: type(m).__name__ for name, m in layers.items()},
        weights=[name for name, p in target.named_parameters() if p.dim() >= 2 and p.requires_grad],
        fixed_step=[name for name, p in target.named_parameters()
                    if id(p) in fixed and p.requires_grad],
        probe=probe,
    )


@contextlib.contextmanager
def rng_preserved():
    """Restore the CPU and CUDA random number generators on exit."""
    cpu = torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        torch.random.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def throwaway_copy(module: nn.Module, trainer: Any = None) -> nn.Module:
    """A deep copy of ``module`` without any hooks (another callback's hooks must not see the
    check's forward pass) and with logging turned off, attached to ``trainer`` so that a
    ``training_step`` reading ``self.trainer`` runs as in the fit. (A LightningModule's copy
    never carries its trainer: Lightning drops it when the module is copied.)"""
    clone = without_hooks(copy.deepcopy(module))
    if trainer is not None and hasattr(type(clone), "trainer"):
        clone.trainer = trainer
    for name in ("log", "log_dict"):  # the check's batch must not reach the run's metrics
        if hasattr(clone, name):
            setattr(clone, name, lambda *args, **kwargs: None)
    return clone


def copy_optimizer(optimizer: torch.optim.Optimizer, module: nn.Module,
                   clone: nn.Module) -> torch.optim.Optimizer:
    """An optimizer of the same class and settings (current learning rate included) over
    ``clone``'s parameters."""
    names = {id(p): name for name, p in module.named_parameters()}
    cloned = dict(clone.named_parameters())
    groups = [{**{k: v for k, v in group.items() if k != "params"},
               "params": [cloned[names[id(p)]] for p in group["params"] if id(p) in names]}
              for group in optimizer.param_groups]
    # The groups carry every setting; the constructor gets the defaults it accepts (AdamW
    # keeps a ``decoupled_weight_decay`` default that its own __init__ does not take).
    accepted = inspect.signature(type(optimizer).__init__).parameters
    defaults = {k: v for k, v in optimizer.defaults.items() if k in accepted}
    return type(optimizer)([g for g in groups if g["params"]], **defaults)


#: Optimizers whose step is proportional to the gradient, so that one step's size tells the
#: learning rate's (the first step of an adaptive optimizer is about lr per weight). Their
#: subclasses too, e.g. netscope.optim.MuonSGD, whose judged weights are its SGD part.
PROPORTIONAL: tuple[type[torch.optim.Optimizer], ...] = (torch.optim.SGD, torch.optim.ASGD)


def training_loss(module: nn.Module, batch: Any) -> torch.Tensor | None:
    """The loss the model's own ``training_step`` returns for ``batch`` (a tensor, or the
    ``"loss"`` of a dict); ``None`` when it returns none."""
    output = module.training_step(batch, 0)
    loss = output.get("loss") if isinstance(output, dict) else output
    return loss if isinstance(loss, torch.Tensor) and loss.requires_grad else None


def run_preflight(module: nn.Module, optimizer: torch.optim.Optimizer | None, batch: Any,
                  thresholds: Thresholds, saturation_margin: float = 0.05,
                  forward_context: Callable[[], Any] = contextlib.nullcontext,
                  trainer: Any = None, facts: dict[str, Any] | None = None) -> Preflight:
    """Run the check on ``batch`` (as the training loop hands it to ``training_step``).

    Args:
        module: the LightningModule being fit (netscope's, a user's, or a wrapped network).
        optimizer: the fit's optimizer; its class and current settings make the one step.
        batch: one training batch, on the model's device.
        thresholds: what counts as wrong.
        saturation_margin: as ``callbacks.ActivationStatistics``'s.
        forward_context: the run's precision context (``precision_plugin.forward_context``).
        trainer: the trainer, attached to the copy for a ``training_step`` that reads it.
        facts: what the datamodule declares (``task``, ``num_classes``), for a model that
            does not say.
    """
    report = Preflight(context_of(module, optimizer, facts))
    coverage = report.coverage
    report.findings += symmetry(inspected(module), report.context, thresholds, coverage)
    if not hasattr(module, "training_step"):
        _skip_loss_checks(coverage, "the model has no training_step")
        return report
    if getattr(module, "automatic_optimization", True) is False:
        _skip_loss_checks(coverage, "the model optimizes manually inside its training_step, "
                                    "which the check cannot run without stepping its optimizer")
        return report
    with rng_preserved(), torch.enable_grad():
        clone = throwaway_copy(module, trainer)
        clone.train()
        target = inspected(clone)
        _, layers = probe_layers(target)
        outputs: dict[str, tuple[nn.Module, torch.Tensor]] = {}
        grads: dict[str, torch.Tensor] = {}

        def keep(name: str):
            def hook(layer: nn.Module, inputs: Any, output: Any) -> None:
                if isinstance(output, torch.Tensor):
                    outputs[name] = (layer, output.detach())
                    if output.requires_grad:
                        output.register_hook(lambda g: grads.__setitem__(name, g.detach()))
            return hook

        for name, layer in layers.items():
            layer.register_forward_hook(keep(name))
        with forward_context():
            loss = training_loss(clone, batch)
        if loss is None:
            _skip_loss_checks(coverage, "training_step returned no loss with a gradient")
            return report
        # a wrapped network's classes are known from its first outputs
        learned = context_of(clone, facts=facts)
        report.context = replace(report.context, task=learned.task, num_classes=learned.num_classes)
        report.loss = float(loss.detach())
        loss.backward()
        report.layers = _layer_rows(outputs, grads, target, report.context.probe,
                                    saturation_margin)
        report.weights = one_step(module, clone, optimizer, report.context.weights)
        report.optimizer = type(optimizer).__name__ if optimizer is not None else None
        report.proportional_step = isinstance(optimizer, PROPORTIONAL)
    report.findings += judge(report, thresholds)
    return report


def _skip_loss_checks(coverage: Coverage, why: str) -> None:
    for name in ("initial_loss", "signal_propagation", "init_dead_units", "init_saturation",
                 "first_step"):
        coverage.skipped(name, why)


def _layer_rows(outputs: dict[str, tuple[nn.Module, torch.Tensor]],
                grads: dict[str, torch.Tensor], target: nn.Module, probe: str,
                margin: float) -> list[dict[str, Any]]:
    """One row per measured layer, input to output: what its output and gradient show."""
    modules = dict(target.named_modules())
    rows = []
    for name, (layer, output) in outputs.items():
        stats = {key.split("/", 1)[0]: float(value)
                 for key, value in output_statistics(name, layer, output, margin).items()}
        if probe == "pre_activations":  # dead units from the incoming weights' gradient
            weight_grad = getattr(modules[name], "weight").grad
            stats["act_dead"] = float(dead_rows(weight_grad)) if weight_grad is not None else None
        grad = grads.get(name)
        rows.append({
            "name": name, "kind": type(layer).__name__,
            "act_std": stats["act_std"],
            # per output, so layers of different widths compare
            "grad_rms": float(grad.float().square().mean().sqrt()) if grad is not None else None,
            "dead_fraction": stats.get("act_dead"),
            "zero_fraction": stats.get("act_zero"),
            "saturated_fraction": stats.get("act_saturated"),
        })
    return rows


@torch.no_grad()
def one_step(module: nn.Module, clone: nn.Module, optimizer: torch.optim.Optimizer | None,
             weights: list[str]) -> list[dict[str, Any]]:
    """Gradient norm, weight norm and update ratio of one optimizer step on ``clone``
    (``weights`` named as the diagnostics name them)."""
    parameters = dict(inspected(clone).named_parameters())
    before = {name: parameters[name].detach().clone() for name in weights}
    if optimizer is not None:
        try:
            copy_optimizer(optimizer, module, clone).step()
        except TypeError:  # an optimizer whose step needs a closure (LBFGS): no ratio
            optimizer = None
    rows = []
    for name in weights:
        parameter, old = parameters[name], before[name]
        weight_norm, moved = float(old.float().norm()), float((parameter - old).float().norm())
        grad = parameter.grad
        rows.append({"name": name, "weight_norm": weight_norm,
                     "grad_norm": float(grad.float().norm()) if grad is not None else 0.0,
                     "update_ratio": update_ratio(weight_norm, moved) if optimizer else None})
    return rows


def symmetry(module: nn.Module, context: Context, t: Thresholds,
             coverage: Coverage | None = None) -> list[Finding]:
    """Hidden weight layers whose units all have the same incoming weights (zero or constant
    init): they compute the same thing, get the same gradient, and stay the same."""
    parameters = dict(module.named_parameters())
    hidden = context.weights[:-1]  # the head's units are told apart by their targets
    if coverage is not None:
        if hidden:
            coverage.ran("symmetry")
        else:
            coverage.skipped("symmetry", "the model has one weight layer: only hidden layers "
                                         "can be symmetric")
    for name in hidden:
        weight = parameters[name].detach().float().flatten(1)
        if weight.shape[0] < 2:
            continue
        spread = float((weight - weight[:1]).abs().max())
        if spread <= t.symmetry_tolerance * float(weight.abs().max()):
            layer = name.removesuffix(".weight")
            return [Finding(
                "symmetry", "error", layer, 0,
                f"all {weight.shape[0]} units of {layer} start with identical weights "
                f"(zero or constant init), so they get identical gradients and can never "
                f"differ; use a random init (default, xavier_*, kaiming_*)",
                {"units": weight.shape[0], "max_difference": spread,
                 "weight_abs_max": float(weight.abs().max())})]
    return []


def judge(report: Preflight, t: Thresholds) -> list[Finding]:
    """The findings in the check's numbers (symmetry is judged on the weights alone), and
    which checks could judge them."""
    findings, coverage = [], report.coverage
    context, chance = report.context, report.context.chance_loss
    for name, why in preflight_reasons(context).items():
        coverage.skipped(name, why)
    head = context.weights[-1].removesuffix(".weight") if context.weights else "model"
    if chance is not None and report.loss is not None:
        coverage.ran("initial_loss")
        if not report.loss <= t.initial_loss_factor * chance:
            findings.append(Finding(
                "bad_initial_loss", "warning", head, 0,
                f"the initial loss is {report.loss:.3g}, {report.loss / chance:.1f} times the "
                f"chance loss {chance:.3g}: the outputs of {head} start far too confident; "
                f"scale down the head's init (or check the loss matches the task)",
                {"loss": report.loss, "chance_loss": chance, "threshold": t.initial_loss_factor}))
    findings += signal(report, t)
    if any(l["dead_fraction"] is not None for l in report.layers):
        coverage.ran("init_dead_units")
    dead = [l for l in report.layers if (l["dead_fraction"] or 0) >= t.dead_fraction]
    if dead:  # one finding, at the first such layer: the later ones often follow from it
        first, more = dead[0], f" (and {len(dead) - 1} later layers)" if len(dead) > 1 else ""
        findings.append(Finding(
            "dead_units", "warning", first["name"], 0,
            f"{first['dead_fraction']:.0%} of the units of {first['name']} ({first['kind']}){more} "
            f"{'get no gradient from any sample' if context.probe == 'pre_activations' else 'output zero for every sample'} "
            f"already at init: they will never learn; check the init and the biases, or use "
            f"leaky_relu",
            {"dead_fraction": {l["name"]: l["dead_fraction"] for l in dead},
             "threshold": t.dead_fraction}))
    if any(l["saturated_fraction"] is not None for l in report.layers):
        coverage.ran("init_saturation")
    saturated = [l for l in report.layers if (l["saturated_fraction"] or 0) >= t.saturated_fraction]
    if saturated:
        first = saturated[0]
        more = f" (and {len(saturated) - 1} later layers)" if len(saturated) > 1 else ""
        findings.append(Finding(
            "saturated_units", "warning", first["name"], 0,
            f"{first['saturated_fraction']:.0%} of the outputs of {first['name']} "
            f"({first['kind']}){more} start at its asymptotes, where its gradient is near zero; "
            f"use a smaller init scale (xavier_normal with gain 1) or ReLU",
            {"saturated_fraction": {l["name"]: l["saturated_fraction"] for l in saturated},
             "threshold": t.saturated_fraction}))
    vanishing = any(f.code == "vanishing_gradients" for f in findings)
    report.context.signal_vanishes = vanishing  # the training-time rules read it too
    findings += first_step(report, t, vanishing)
    return findings


def first_step(report: Preflight, t: Thresholds, vanishing: bool = False) -> list[Finding]:
    """A first step far larger or smaller than the healthy update ratio."""
    if report.optimizer is None:
        report.coverage.skipped("first_step", "no optimizer at pre-flight (or one whose step "
                                              "needs a closure)")
        return []
    judged = judged_weights([w["name"] for w in report.weights], report.context.fixed_step)
    ratios = [w["update_ratio"] for w in report.weights
              if w["update_ratio"] is not None and math.isfinite(w["update_ratio"])
              and w["update_ratio"] > 0 and w["name"] in judged]
    if not ratios:
        report.coverage.skipped("first_step", "no weight layer whose step tells the learning "
                                              "rate (none moved, or the optimizer fixes them)")
        return []
    median = statistics.median(ratios)
    if vanishing and median < t.update_ratio / t.update_factor:
        # The steps are small because the gradient vanishes through depth: a larger rate
        # would not fix that, and the vanishing_gradients finding says what would.
        report.coverage.skipped("first_step", "the gradient vanishes through depth, so the "
                                              "size of the first step does not tell the rate")
        return []
    report.coverage.ran("first_step")
    evidence = {"median_update_ratio": median, "healthy": t.update_ratio,
                "update_ratio": {w["name"]: w["update_ratio"] for w in report.weights}}
    adaptive = not report.proportional_step
    if adaptive and t.update_ratio * t.update_factor < median <= t.adaptive_first_step:
        # Adam, RMSprop, Adagrad, ... divide by the gradient's own size: their first step
        # moves every weight by about lr (RMSprop 10 lr), whatever the gradient, and later
        # steps shrink. Too high is judged again on the logged steps, unless this first
        # step is larger than the weights themselves (below).
        return [Finding(
            "lr_too_high", "info", "model", 0,
            f"the first step of {report.optimizer} changes the weights by {median:.1%} of "
            f"their size (healthy: about 0.1%); its first steps are large by design, so the "
            f"rules judge the learning rate again on the logged steps", evidence)]
    if median > (t.adaptive_first_step if adaptive else t.update_ratio * t.update_factor):
        return [Finding(
            "lr_too_high", "warning", "model", 0,
            f"the first step changes the weights by {median:.1%} of their size (healthy: "
            f"about 0.1%): the learning rate is too high; try 10x smaller", evidence)]
    if median < t.update_ratio / t.update_factor:
        return [Finding(
            "lr_too_low", "warning", "model", 0,
            f"the first step changes the weights by {median:.1e} of their size (healthy: "
            f"about 1e-3): the learning rate is too low; try 10-100x larger", evidence)]
    return []


def signal(report: Preflight, t: Thresholds) -> list[Finding]:
    """A forward or backward signal that shrinks or grows by more than ``signal_ratio``
    from the first to the last measured layer."""
    layers = [l for l in report.layers if l["grad_rms"] is not None]
    if len(layers) < 2:
        report.coverage.skipped("signal_propagation", f"{len(layers)} measured layer with a "
                                                      f"gradient: depth needs two or more")
        return []
    report.coverage.ran("signal_propagation")
    first, last = layers[0], layers[-1]
    evidence = {"act_std": {l["name"]: l["act_std"] for l in layers},
                "grad_rms": {l["name"]: l["grad_rms"] for l in layers}, "threshold": t.signal_ratio}
    if min(first["grad_rms"], last["grad_rms"], first["act_std"]) <= 0:
        return []  # no signal at all: symmetry or dead units say why
    backward = first["grad_rms"] / last["grad_rms"]
    forward = last["act_std"] / first["act_std"]
    what = "pre-activation std" if report.context.probe == "pre_activations" else "activation std"
    if backward < 1 / t.signal_ratio or forward < 1 / t.signal_ratio:
        weakest = min(layers, key=lambda l: l["grad_rms"] if backward < 1 / t.signal_ratio
                      else l["act_std"])
        return [Finding(
            "vanishing_gradients", "warning", weakest["name"], 0,
            f"the signal fades through depth (gradient x{backward:.1e} from {last['name']} back "
            f"to {first['name']}, {what} x{forward:.1e} forward), weakest at "
            f"{weakest['name']} ({weakest['kind']}): the early layers will barely learn; use "
            f"the init made for the activation (kaiming_* for ReLU), batch norm or fewer layers",
            {**evidence, "backward_ratio": backward, "forward_ratio": forward})]
    if backward > t.signal_ratio or forward > t.signal_ratio:
        strongest = max(layers, key=lambda l: l["grad_rms"] if backward > t.signal_ratio
                        else l["act_std"])
        return [Finding(
            "exploding_gradients", "warning", strongest["name"], 0,
            f"the signal grows through depth (gradient x{backward:.1e} from {last['name']} back "
            f"to {first['name']}, {what} x{forward:.1e} forward), largest at "
            f"{strongest['name']} ({strongest['kind']}): steps will be huge and unstable; use a "
            f"smaller init scale (the init made for the activation) or batch norm",
            {**evidence, "backward_ratio": backward, "forward_ratio": forward})]
    return []
