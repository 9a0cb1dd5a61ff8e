"""What one activation layer's output says about its units: dead, zero, saturated.

One definition, used by the activation diagnostics (``act_dead``, ``act_zero``,
``act_saturated``) and by the pre-flight check, so the two always agree.
"""

import torch
from torch import nn

#: Output range (lower, upper asymptote) of each saturating activation.
ASYMPTOTES: dict[type[nn.Module], tuple[float, float]] = {
    nn.Sigmoid: (0.0, 1.0), nn.Tanh: (-1.0, 1.0),
}


def dead_fraction(output: torch.Tensor) -> torch.Tensor:
    """Share of units (dim 1: channels of a conv output, features of a linear one) that are
    zero for every sample and position of the batch: units that pass no gradient and so no
    longer learn."""
    units = output.shape[1] if output.dim() > 1 else 1
    alive = (output != 0).transpose(0, 1).reshape(units, -1).any(dim=1)
    return 1.0 - alive.float().mean()


def zero_fraction(output: torch.Tensor) -> torch.Tensor:
    """Share of exact zeros among all outputs (sparsity; about 0.5 in a healthy ReLU layer)."""
    return (output == 0).float().mean()


def saturated_fraction(output: torch.Tensor, module: nn.Module,
                       margin: float = 0.05) -> torch.Tensor | None:
    """Share of outputs within ``margin`` x (output range) of an asymptote (Glorot & Bengio
    2010), or ``None`` for an activation without asymptotes."""
    bounds = ASYMPTOTES.get(type(module))
    if bounds is None:
        return None
    low, high = bounds
    width = margin * (high - low)
    return ((output < low + width) | (output > high - width)).float().mean()
