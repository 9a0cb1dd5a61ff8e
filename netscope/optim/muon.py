"""``MuonSGD``: Muon for the hidden weights, SGD for every other parameter, in one optimizer.

Muon (Keller Jordan, 2024) replaces a weight matrix's momentum step by its nearest
orthogonal matrix (a few Newton-Schulz iterations), so that every direction of the update
moves by about the same amount. It is defined for the *hidden* weights of 2 or more
dimensions (a filter bank is flattened to ``out x (in*k*k)``); the input layer, the head,
biases and norms train with a standard optimizer (Jordan, "Muon: an optimizer for hidden
layers in neural networks", 2024). airbench94_muon trains its convolution filters this way
and the rest (BatchNorm shifts, the whitening bias, the head) with Nesterov SGD, and reaches
airbench94's accuracy on about 20% fewer training images.

Written here, not taken from ``torch.optim.Muon``, because that class accepts only 2-D
parameters (a filter bank is 4-D: airbench flattens it to ``out x (in*k*k)``), always
orthogonalizes in bfloat16 (emulated, and slow, on CPUs without AVX512-BF16), and has no
weight normalization (airbench rescales each filter bank to norm ``sqrt(out)`` before its
step, which keeps the step's size relative to the weights constant under BatchNorm). The
SGD part is ``torch.optim.SGD``'s own step. One class, so a config names it as
``optimizer.class_path`` and any ``lr_scheduler`` scales both parts together.
"""

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from netscope.core.errors import UserError

#: airbench's quintic Newton-Schulz coefficients (steepest slope at zero, not exact convergence).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def orthogonalize(matrix: torch.Tensor, steps: int = 3, eps: float = 1e-7) -> torch.Tensor:
    """Approximately ``U V^T`` of ``matrix = U S V^T`` (singular values land in about
    0.5-1.5, which trains as well as exactly 1), by ``steps`` Newton-Schulz iterations.
    bfloat16 on accelerators, float32 on CPUs."""
    a, b, c = NS_COEFFICIENTS
    x = matrix.to(torch.float32 if matrix.device.type == "cpu" else torch.bfloat16)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x = x / (x.norm() + eps)  # spectral norm <= Frobenius norm <= 1
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x.T if tall else x).to(matrix.dtype)


class MuonSGD(torch.optim.SGD):
    """Muon on the hidden weights, SGD on the rest.

    The hidden weights are the parameters of 2 or more dimensions except the first and the
    last of them in the model's parameter order: the input layer (an MLP's first ``Linear``,
    a ConvNet's stem) and the head stay with SGD. A parameter group given with
    ``"muon": True`` or ``False`` overrides the rule for its parameters. The hidden weights
    form the last parameter group (``orthogonalize: True``), with their own
    ``muon_lr`` and ``muon_momentum`` and no weight decay (they are rescaled to a fixed norm
    before each step instead); every other group is plain ``torch.optim.SGD`` with ``lr``,
    ``momentum``, ``nesterov`` and ``weight_decay``. A scheduler that sets rates (a
    ``OneCycleLR`` with one ``max_lr``) gives both parts the same: leave ``max_lr`` out to
    keep each part's own rate, or give one per group (``[lr, muon_lr]``).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        muon_lr: float = 0.24,
        muon_momentum: float = 0.6,
        ns_steps: int = 3,
        normalize_filters: bool = True,
    ) -> None:
        """Args:
            params: the model's parameters (or parameter groups, each split in two).
            lr, momentum, nesterov, weight_decay: SGD's, for the parameters that are not
                hidden weights (biases, BatchNorm, the input layer, the head).
            muon_lr: Muon's step for the hidden weights, relative to their norm (airbench:
                0.24, decayed by the schedule like ``lr``).
            muon_momentum: Muon's Nesterov momentum (airbench: 0.6).
            ns_steps: Newton-Schulz iterations per step (airbench: 3).
            normalize_filters: rescale each hidden weight to norm ``sqrt(out_features)``
                before its step (airbench's filter normalization).
        """
        # Checked as torch.optim checks lr and momentum: the CLI reports the refused value.
        if muon_lr < 0 or muon_momentum < 0 or ns_steps < 1:
            raise ValueError(f"Invalid Muon setting: muon_lr {muon_lr} and muon_momentum "
                             f"{muon_momentum} must be >= 0, ns_steps {ns_steps} >= 1")
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        groups = [{**g, "params": list(g["params"])} for g in groups]
        hidden = _hidden_weights(groups)
        plain, matrices = [], []
        for group in groups:
            rest = {k: v for k, v in group.items() if k not in ("params", "muon")}
            plain.append({**rest, "params": [p for p in group["params"] if id(p) not in hidden]})
            matrices += [p for p in group["params"] if id(p) in hidden]
        if not any(p.requires_grad for p in matrices):
            raise UserError("MuonSGD orthogonalizes hidden weight matrices (every weight of 2 or "
                            "more dimensions but the first layer's and the head's), and this "
                            "model has no trainable ones; choose another optimizer, e.g. "
                            "--optimizer torch.optim.SGD --optimizer.init_args.lr 0.05")
        muon_group = {"params": matrices, "lr": muon_lr, "momentum": muon_momentum,
                      "nesterov": True, "weight_decay": 0.0, "orthogonalize": True,
                      "ns_steps": ns_steps, "normalize_filters": normalize_filters}
        super().__init__([g for g in plain if g["params"]] + [muon_group], lr=lr,
                         momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
        for group in self.param_groups:
            group.setdefault("orthogonalize", False)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["orthogonalize"]:
                self._muon_step(group)
        # SGD's own step (foreach kernels, state layout) on the other groups only.
        groups = self.param_groups
        self.param_groups = [g for g in groups if not g["orthogonalize"]]
        try:
            super().step()
        finally:
            self.param_groups = groups
        return loss

    def _muon_step(self, group: dict[str, Any]) -> None:
        momentum = group["momentum"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p.grad)
            buffer = state["momentum_buffer"]
            buffer.mul_(momentum).add_(p.grad)
            direction = p.grad.add(buffer, alpha=momentum) if group["nesterov"] else buffer
            if group["normalize_filters"]:
                p.mul_(math.sqrt(p.size(0)) / p.norm().clamp_min(1e-12))
            update = orthogonalize(direction.flatten(1), group["ns_steps"]).view_as(p)
            p.add_(update, alpha=-group["lr"])


def _hidden_weights(groups: list[dict[str, Any]]) -> set[int]:
    """The ids of the parameters Muon takes: 2 or more dimensions, not the first or the last
    such parameter in order (the input layer and the head), unless a group says ``muon``."""
    matrices = [p for g in groups for p in g["params"] if p.ndim >= 2]
    edges = {id(matrices[0]), id(matrices[-1])} if matrices else set()
    hidden = set()
    for group in groups:
        for p in group["params"]:
            chosen = group.get("muon")
            if chosen is True or (chosen is None and p.ndim >= 2 and id(p) not in edges):
                hidden.add(id(p))
    return hidden
