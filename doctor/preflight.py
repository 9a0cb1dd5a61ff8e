"""The pre-flight check: one training batch through a throw-away copy of the model, before
the first optimizer step.

It measures what is wrong before any compute is spent: the initial loss against the chance
loss, the signal through depth (forward activation std and backward gradient per
activation layer: Brock et al. 2021's signal propagation plot), dead and saturated units,
units with identical weights, and the update ratio of one step at the configured learning
rate. Everything runs on a deep copy with its own optimizer, and the random number
generators are restored afterwards, so a run with the check trains exactly as without it.
"""

import contextlib
import copy
import inspect
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from netscope.doctor.findings import Finding
from netscope.doctor.measures import dead_fraction, saturated_fraction, zero_fraction
from netscope.doctor.rules import Context, judged_weights
from netscope.doctor.thresholds import Thresholds
from netscope.models.activations import ACTIVATION_TYPES, RECTIFIER_TYPES

FILENAME = "preflight.json"


@dataclass
class Preflight:
    """The check's numbers (written to ``preflight.json``) and its findings."""

    context: Context
    loss: float | None = None
    layers: list[dict[str, Any]] = field(default_factory=list)  # activation layers, in order
    weights: list[dict[str, Any]] = field(default_factory=list)  # weight parameters, in order
    findings: list[Finding] = field(default_factory=list)
    optimizer: str | None = None  # the class of the optimizer that made the one step
    proportional_step: bool = False  # its step is lr x gradient (see PROPORTIONAL)

    def to_dict(self) -> dict[str, Any]:
        return {"context": self.context.to_dict(), "loss": self.loss,
                "chance_loss": self.context.chance_loss, "layers": self.layers,
                "weights": self.weights, "optimizer": self.optimizer,
                "proportional_step": self.proportional_step,
                "findings": [f.to_dict() for f in self.findings]}


def context_of(module: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> Context:
    """The rules' context for a netscope model: task, classes and layer order, and the
    weights whose step size ``optimizer`` fixes (param groups marked ``orthogonalize``)."""
    fixed = {id(p) for group in (optimizer.param_groups if optimizer is not None else [])
             if group.get("orthogonalize") for p in group["params"]}
    return Context(
        task=str(getattr(module, "task", "classification")),
        num_classes=int(getattr(module, "num_classes", 0) or 0),
        activations={name: type(m).__name__ for name, m in module.named_modules()
                     if isinstance(m, ACTIVATION_TYPES)},
        weights=[name for name, p in module.named_parameters() if p.dim() >= 2 and p.requires_grad],
        fixed_step=[name for name, p in module.named_parameters()
                    if id(p) in fixed and p.requires_grad],
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


def throwaway_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` without its trainer and without any hooks (another
    callback's hooks must not see the check's forward pass)."""
    trainer = module.__dict__.get("_trainer")
    module.__dict__["_trainer"] = None
    try:
        clone = copy.deepcopy(module)
    finally:
        module.__dict__["_trainer"] = trainer
    for part in clone.modules():
        part._forward_hooks.clear()
        part._forward_pre_hooks.clear()
        part._backward_hooks.clear()
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
#: subclasses too, e.g. models.MuonSGD, whose judged weights are its SGD part.
PROPORTIONAL: tuple[type[torch.optim.Optimizer], ...] = (torch.optim.SGD, torch.optim.ASGD)


def run_preflight(module: nn.Module, optimizer: torch.optim.Optimizer | None, batch: Any,
                  thresholds: Thresholds, saturation_margin: float = 0.05,
                  forward_context: Callable[[], Any] = contextlib.nullcontext) -> Preflight:
    """Run the check on ``batch`` (inputs first, targets second, on the model's device).

    Args:
        module: a netscope model (``evaluate``, ``loss_fn``); others get the weight checks only.
        optimizer: the fit's optimizer; its class and current settings make the one step.
        batch: one training batch.
        thresholds: what counts as wrong.
        saturation_margin: as ``callbacks.ActivationStatistics``'s.
        forward_context: the run's precision context (``precision_plugin.forward_context``).
    """
    report = Preflight(context_of(module, optimizer))
    report.findings += symmetry(module, report.context, thresholds)
    if not all(hasattr(module, a) for a in ("evaluate", "loss_fn", "outputs_for_loss")):
        return report
    with rng_preserved(), torch.enable_grad():
        clone = throwaway_copy(module)
        clone.train()
        outputs: dict[str, tuple[nn.Module, torch.Tensor]] = {}
        grads: dict[str, torch.Tensor] = {}

        def keep(name: str):
            def hook(layer: nn.Module, inputs: Any, output: Any) -> None:
                if isinstance(output, torch.Tensor):
                    outputs[name] = (layer, output.detach())
                    if output.requires_grad:
                        output.register_hook(lambda g: grads.__setitem__(name, g.detach()))
            return hook

        for name, layer in clone.named_modules():
            if name in report.context.activations:
                layer.register_forward_hook(keep(name))
        inputs, targets = batch[0], batch[1]
        with forward_context():
            predicted = clone.outputs_for_loss(clone.evaluate(inputs, "train"))
            loss = clone.loss_fn(predicted, clone.targets_for_loss(targets, predicted))
        report.loss = float(loss.detach())
        loss.backward()
        for name, (layer, output) in outputs.items():
            values, grad = output.float(), grads.get(name)
            saturated = saturated_fraction(values, layer, saturation_margin)
            report.layers.append({
                "name": name, "kind": type(layer).__name__,
                "act_std": float(values.std()) if values.numel() > 1 else 0.0,
                # per output, so layers of different widths compare
                "grad_rms": float(grad.float().square().mean().sqrt()) if grad is not None else None,
                "dead_fraction": float(dead_fraction(values)) if isinstance(layer, RECTIFIER_TYPES) else None,
                "zero_fraction": float(zero_fraction(values)),
                "saturated_fraction": float(saturated) if saturated is not None else None,
            })
        report.weights = one_step(module, clone, optimizer, report.context.weights)
        report.optimizer = type(optimizer).__name__ if optimizer is not None else None
        report.proportional_step = isinstance(optimizer, PROPORTIONAL)
    report.findings += judge(report, thresholds)
    return report


@torch.no_grad()
def one_step(module: nn.Module, clone: nn.Module, optimizer: torch.optim.Optimizer | None,
             weights: list[str]) -> list[dict[str, Any]]:
    """Gradient norm, weight norm and update ratio of one optimizer step on ``clone``."""
    parameters = dict(clone.named_parameters())
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
                     "update_ratio": moved / weight_norm if weight_norm > 0 and optimizer else None})
    return rows


def symmetry(module: nn.Module, context: Context, t: Thresholds) -> list[Finding]:
    """Hidden weight layers whose units all have the same incoming weights (zero or constant
    init): they compute the same thing, get the same gradient, and stay the same."""
    parameters = dict(module.named_parameters())
    for name in context.weights[:-1]:  # the head's units are told apart by their targets
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
    """The findings in the check's numbers (symmetry is judged on the weights alone)."""
    findings = []
    context, chance = report.context, report.context.chance_loss
    head = context.weights[-1].removesuffix(".weight") if context.weights else "model"
    if chance is not None and report.loss is not None and not (
            report.loss <= t.initial_loss_factor * chance):
        findings.append(Finding(
            "bad_initial_loss", "warning", head, 0,
            f"the initial loss is {report.loss:.3g}, {report.loss / chance:.1f} times the "
            f"chance loss {chance:.3g}: the outputs of {head} start far too confident; "
            f"scale down the head's init (or check the loss matches the task)",
            {"loss": report.loss, "chance_loss": chance, "threshold": t.initial_loss_factor}))
    findings += signal(report, t)
    dead = [l for l in report.layers if (l["dead_fraction"] or 0) >= t.dead_fraction]
    if dead:  # one finding, at the first such layer: the later ones often follow from it
        first, more = dead[0], f" (and {len(dead) - 1} later layers)" if len(dead) > 1 else ""
        findings.append(Finding(
            "dead_units", "warning", first["name"], 0,
            f"{first['dead_fraction']:.0%} of the units of {first['name']} ({first['kind']}){more} "
            f"output zero for every sample already at init: they will never learn; check the "
            f"init and the biases, or use leaky_relu",
            {"dead_fraction": {l["name"]: l["dead_fraction"] for l in dead},
             "threshold": t.dead_fraction}))
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
    judged = judged_weights([w["name"] for w in report.weights], report.context.fixed_step)
    ratios = [w["update_ratio"] for w in report.weights
              if w["update_ratio"] is not None and math.isfinite(w["update_ratio"])
              and w["update_ratio"] > 0 and w["name"] in judged]
    if ratios:
        median = statistics.median(ratios)
        evidence = {"median_update_ratio": median, "healthy": t.update_ratio,
                    "update_ratio": {w["name"]: w["update_ratio"] for w in report.weights}}
        adaptive = not report.proportional_step
        if adaptive and t.update_ratio * t.update_factor < median <= t.adaptive_first_step:
            # Adam, RMSprop, Adagrad, ... divide by the gradient's own size: their first step
            # moves every weight by about lr (RMSprop 10 lr), whatever the gradient, and later
            # steps shrink. Too high is judged again on the logged steps, unless this first
            # step is larger than the weights themselves (below).
            findings.append(Finding(
                "lr_too_high", "info", "model", 0,
                f"the first step of {report.optimizer} changes the weights by {median:.1%} of "
                f"their size (healthy: about 0.1%); its first steps are large by design, so the "
                f"rules judge the learning rate again on the logged steps", evidence))
        elif median > (t.adaptive_first_step if adaptive else t.update_ratio * t.update_factor):
            findings.append(Finding(
                "lr_too_high", "warning", "model", 0,
                f"the first step changes the weights by {median:.1%} of their size (healthy: "
                f"about 0.1%): the learning rate is too high; try 10x smaller", evidence))
        elif median < t.update_ratio / t.update_factor:
            findings.append(Finding(
                "lr_too_low", "warning", "model", 0,
                f"the first step changes the weights by {median:.1e} of their size (healthy: "
                f"about 1e-3): the learning rate is too low; try 10-100x larger", evidence))
    return findings


def signal(report: Preflight, t: Thresholds) -> list[Finding]:
    """A forward or backward signal that shrinks or grows by more than ``signal_ratio``
    from the first to the last activation layer."""
    layers = [l for l in report.layers if l["grad_rms"] is not None]
    if len(layers) < 2:
        return []
    first, last = layers[0], layers[-1]
    evidence = {"act_std": {l["name"]: l["act_std"] for l in layers},
                "grad_rms": {l["name"]: l["grad_rms"] for l in layers}, "threshold": t.signal_ratio}
    if last["grad_rms"] <= 0 or first["act_std"] <= 0:
        return []  # no signal at all: symmetry or dead units say why
    backward = first["grad_rms"] / last["grad_rms"]
    forward = last["act_std"] / first["act_std"]
    if backward < 1 / t.signal_ratio or forward < 1 / t.signal_ratio:
        weakest = min(layers, key=lambda l: l["grad_rms"] if backward < 1 / t.signal_ratio
                      else l["act_std"])
        return [Finding(
            "vanishing_gradients", "warning", weakest["name"], 0,
            f"the signal fades through depth (gradient x{backward:.1e} from {last['name']} back "
            f"to {first['name']}, activation std x{forward:.1e} forward), weakest at "
            f"{weakest['name']} ({weakest['kind']}): the early layers will barely learn; use "
            f"the init made for the activation (kaiming_* for ReLU), batch norm or fewer layers",
            {**evidence, "backward_ratio": backward, "forward_ratio": forward})]
    if backward > t.signal_ratio or forward > t.signal_ratio:
        strongest = max(layers, key=lambda l: l["grad_rms"] if backward > t.signal_ratio
                        else l["act_std"])
        return [Finding(
            "exploding_gradients", "warning", strongest["name"], 0,
            f"the signal grows through depth (gradient x{backward:.1e} from {last['name']} back "
            f"to {first['name']}, activation std x{forward:.1e} forward), largest at "
            f"{strongest['name']} ({strongest['kind']}): steps will be huge and unstable; use a "
            f"smaller init scale (the init made for the activation) or batch norm",
            {**evidence, "backward_ratio": backward, "forward_ratio": forward})]
    return []
