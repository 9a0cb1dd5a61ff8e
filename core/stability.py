"""The largest sharpness an optimizer's step stays stable at, and how to measure against it.

On a quadratic with curvature λ, gradient descent at rate η converges only while λ < 2/η;
with heavy-ball momentum β (``v = βv + g``, PyTorch's SGD) while λ < (2 + 2β)/η; with
Nesterov momentum while λ < (2 + 2β)/(η(1 + 2β)) (Cohen et al., ICLR 2021, "Gradient descent
on neural networks typically occurs at the edge of stability", appendix: the roots of
``z² - (1+β)(1-ηλ)z + β(1-ηλ)`` leave the unit circle at z = -1 there). A dampening d scales
the step by (1 - d).

Adaptive methods divide the step by a preconditioner P = diag(√v + ε). Their stability is
that of the *preconditioned* sharpness λ_max(P⁻¹H) (Cohen et al. 2022, "Adaptive gradient
methods at the edge of stability"): Adam's momentum is an exponential mean, so its limit is
(2 + 2β₁)/(η(1 - β₁)) = 38/η at β₁ = 0.9; RMSprop's (heavy-ball μ on the preconditioned
gradient) is (2 + 2μ)/η, Adagrad's 2/η with P = diag(√(Σg²) + ε).

:func:`stability` returns, for the optimizer in use, the limit and the per-parameter
scale ``S`` such that λ_max(S H S) is the sharpness to compare with it. Parameter groups with
different rates are folded into ``S`` relative to the largest group (a heuristic beyond one
rate: the limit is exact for a shared rate). Where no limit is known (Muon's orthogonalized
steps, any other optimizer) it says so, and the sharpness is the plain λ_max(H).
"""

from dataclasses import dataclass

import torch

#: Optimizers whose stability limit :func:`stability` knows (exact classes: a subclass may
#: change the step, as ``netscope.optim.MuonSGD`` does).
KNOWN = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad")


@dataclass
class Stability:
    """The stability limit of a step and the scale to measure the sharpness in.

    Attributes:
        limit: the largest stable sharpness, or ``None`` when none is known.
        scale: per parameter, ``D^1/2`` (``None``: the identity, plain sharpness).
        formula: the limit in words (``"(2 + 2β)/η, β = 0.9, η = 0.05"``).
        preconditioned: whether the sharpness is that of P⁻¹H (adaptive optimizers).
        reason: why no limit is known, or why none can be measured yet.
    """

    limit: float | None
    scale: list[torch.Tensor] | None = None
    formula: str = ""
    preconditioned: bool = False
    reason: str | None = None


def _momentum_factor(group: dict) -> tuple[float, str]:
    """SGD's (2 + 2β)/(1 - d) or Nesterov's (2 + 2β)/(1 + 2β), and the formula's words."""
    beta, damp = float(group.get("momentum", 0.0)), float(group.get("dampening", 0.0))
    if beta == 0:
        return 2.0, "2/η"
    if group.get("nesterov"):
        return (2 + 2 * beta) / (1 + 2 * beta), f"(2 + 2β)/(η(1 + 2β)), β = {beta:g}"
    if damp:
        return (2 + 2 * beta) / (1 - damp), f"(2 + 2β)/(η(1 - d)), β = {beta:g}, d = {damp:g}"
    return 2 + 2 * beta, f"(2 + 2β)/η, β = {beta:g}"


def _preconditioner(kind: str, group: dict, state: dict) -> torch.Tensor | None:
    """The denominator P of an adaptive step for one parameter (``None`` before its first
    step, when the optimizer holds no statistics yet)."""
    eps = float(group.get("eps", 0.0))
    if kind in ("Adam", "AdamW"):
        second = state.get("max_exp_avg_sq" if group.get("amsgrad") else "exp_avg_sq")
        if second is None or "step" not in state:
            return None
        correction = 1 - group["betas"][1] ** float(state["step"])
        return (second / correction).sqrt() + eps
    if kind == "RMSprop":
        second = state.get("square_avg")
        if second is None:
            return None
        if group.get("centered"):
            second = second - state["grad_avg"] ** 2
        return second.clamp_min(0).sqrt() + eps
    if kind == "Adagrad":
        total = state.get("sum")
        return None if total is None else total.sqrt() + eps
    return None


def _factor(kind: str, group: dict) -> tuple[float, str]:
    if kind == "SGD":
        return _momentum_factor(group)
    if kind in ("Adam", "AdamW"):
        beta1 = float(group["betas"][0])
        return (2 + 2 * beta1) / (1 - beta1), f"(2 + 2β₁)/(η(1 - β₁)), β₁ = {beta1:g}"
    if kind == "RMSprop":
        mu = float(group.get("momentum", 0.0))
        return (2 + 2 * mu, f"(2 + 2μ)/η, μ = {mu:g}") if mu else (2.0, "2/η")
    return 2.0, "2/η"  # Adagrad


def _rate(kind: str, group: dict, state: dict) -> float:
    lr = float(group["lr"])
    if kind == "Adagrad" and group.get("lr_decay") and "step" in state:
        lr /= 1 + (float(state["step"]) - 1) * float(group["lr_decay"])
    return lr


def stability(optimizer: torch.optim.Optimizer | None, params: list[torch.Tensor]) -> Stability:
    """The stability limit of ``optimizer``'s next step over ``params`` (the parameters the
    sharpness is taken in, in order; those the optimizer does not hold get scale 0)."""
    if optimizer is None:
        return Stability(None, reason="the fit has no optimizer")
    kind = type(optimizer).__name__
    if any(group.get("muon") for group in optimizer.param_groups) or "Muon" in kind:
        return Stability(None, reason=f"{kind} orthogonalizes its hidden weights' steps, whose "
                                      f"size does not follow the curvature: no stability limit "
                                      f"is known")
    if kind not in KNOWN:
        return Stability(None, reason=f"no stability limit is known for {kind}")
    group_of = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    groups = [group_of[id(p)] for p in params if id(p) in group_of]
    if not groups:
        return Stability(None, reason="the optimizer holds none of the measured parameters")
    # The reference: the group nearest its own limit factor/rate (the largest rate/factor).
    reference = max(groups, key=lambda g: _rate(kind, g, {}) / _factor(kind, g)[0])
    rate, (factor, words) = _rate(kind, reference, {}), _factor(kind, reference)
    if rate <= 0:
        return Stability(None, reason="every learning rate is 0")
    adaptive = kind != "SGD"
    scale, uniform = [], True
    for p in params:
        group = group_of.get(id(p))
        if group is None:
            scale.append(torch.zeros_like(p, dtype=torch.float32))
            uniform = False
            continue
        state = optimizer.state.get(p, {})
        relative = _rate(kind, group, state) / rate * factor / _factor(kind, group)[0]
        uniform &= relative == 1.0
        if adaptive:
            denominator = _preconditioner(kind, group, state)
            if denominator is None:
                return Stability(None, reason=f"{kind} holds no gradient statistics before its "
                                              f"first step")
            scale.append((relative / denominator.float()).sqrt())
        else:
            scale.append(torch.full_like(p, relative ** 0.5, dtype=torch.float32))
    return Stability(factor / rate, None if uniform and not adaptive else scale,
                     f"{words}, η = {rate:g}", adaptive)
