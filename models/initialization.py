"""The one place where weight initializations are named and applied.

``apply_init`` really sets the weights of every ``Linear`` and ``Conv`` layer of the module
it is given (the course's own experiment initialized a tensor the network never used).
"""

from typing import Literal

import torch
from torch import nn

from models.activations import ActivationName, gain_nonlinearity

InitName = Literal[
    "default",
    "zeros",
    "normal",
    "uniform",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "orthogonal",
]

#: Layer types an initialization applies to.
INIT_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

_DEFAULT_STD = 0.01  # the "small random" scheme of the course
_DEFAULT_BOUND = 0.05


def apply_init(
    module: nn.Module,
    init: InitName,
    activation: ActivationName = "relu",
    scale: float | None = None,
    negative_slope: float = 0.01,
) -> int:
    """Initialize every Linear/Conv weight in ``module``; biases are set to zero.

    Args:
        module: the network (or part of it) to initialize.
        init: the scheme; ``default`` keeps PyTorch's own initialization untouched.
        activation: the non-linearity that follows the layers; it sets the gain of the
            Xavier, Kaiming and orthogonal schemes (``torch.nn.init.calculate_gain``).
        scale: std for ``normal``, bound for ``uniform``, gain for the other schemes
            (replacing the activation's gain). Ignored by ``default`` and ``zeros``.
        negative_slope: the leaky ReLU slope, for its gain.

    Returns:
        The number of layers whose weights were set.
    """
    if init == "default":
        return 0
    layers = [m for m in module.modules() if isinstance(m, INIT_LAYER_TYPES)]
    nonlinearity = gain_nonlinearity(activation)
    param = negative_slope if nonlinearity == "leaky_relu" else None
    gain = scale if scale is not None else nn.init.calculate_gain(nonlinearity, param)
    with torch.no_grad():
        for layer in layers:
            _init_weight(layer.weight, init, gain, scale)
            if layer.bias is not None:
                layer.bias.zero_()
    return len(layers)


def _init_weight(weight: torch.Tensor, init: InitName, gain: float, scale: float | None) -> None:
    match init:
        case "zeros":
            nn.init.zeros_(weight)
        case "normal":
            nn.init.normal_(weight, std=scale if scale is not None else _DEFAULT_STD)
        case "uniform":
            bound = scale if scale is not None else _DEFAULT_BOUND
            nn.init.uniform_(weight, -bound, bound)
        case "xavier_uniform":
            nn.init.xavier_uniform_(weight, gain=gain)
        case "xavier_normal":
            nn.init.xavier_normal_(weight, gain=gain)
        case "kaiming_uniform" | "kaiming_normal":
            # std = gain / sqrt(fan_in); torch's kaiming_* take a nonlinearity rather than a
            # gain, so draw with gain 1 ("linear") and scale.
            fill = nn.init.kaiming_uniform_ if init == "kaiming_uniform" else nn.init.kaiming_normal_
            fill(weight, nonlinearity="linear")
            weight.mul_(gain)
        case "orthogonal":
            nn.init.orthogonal_(weight, gain=gain)
        case _:
            raise ValueError(f"unknown init {init!r}")

