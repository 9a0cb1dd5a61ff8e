"""The measuring functions the diagnostics and the pre-flight check share, so that the two
always agree: which layers are measured, and what one layer's output, one weight's
gradient and one optimizer step say.

Where the activations are measured depends on how the model computes them:

- a model that builds its non-linearities as modules (``nn.ReLU()``, netscope's models):
  their outputs (``act_*/<activation layer>``);
- a model that calls them as functions in ``forward`` (``torch.relu(self.fc1(x))``, most
  user code): nothing can be hooked between the weight layer and the function, so the
  weight layers' outputs, the pre-activations, are measured (``act_*/<weight layer>``),
  and a unit is dead when its incoming weights got no gradient from any sample of the
  batch (AUTOTRAINER's rule, Zhang et al. 2021): a rectifier that is off for every sample
  passes no gradient back to its weights.
"""

import math
from typing import Literal

import torch
from torch import nn

from netscope.models.activations import ACTIVATION_TYPES, RECTIFIER_TYPES

#: Output range (lower, upper asymptote) of each saturating activation.
ASYMPTOTES: dict[type[nn.Module], tuple[float, float]] = {
    nn.Sigmoid: (0.0, 1.0), nn.Tanh: (-1.0, 1.0),
}

#: Layers with a weight matrix or kernel whose outputs are pre-activations.
WEIGHT_LAYER_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Bilinear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
)

Probe = Literal["activations", "pre_activations"]


def activation_layers(module: nn.Module) -> dict[str, nn.Module]:
    """The activation modules of ``module``, by qualified name, in the order built."""
    return {name: m for name, m in module.named_modules() if isinstance(m, ACTIVATION_TYPES)}


def weight_layers(module: nn.Module) -> dict[str, nn.Module]:
    """The Linear/Conv layers of ``module`` that have a weight, by qualified name."""
    return {name: m for name, m in module.named_modules()
            if isinstance(m, WEIGHT_LAYER_TYPES) and getattr(m, "weight", None) is not None}


def probe_layers(module: nn.Module) -> tuple[Probe, dict[str, nn.Module]]:
    """The layers whose outputs the activation statistics measure, and what they are:
    the activation modules when the model has any, else the weight layers."""
    activations = activation_layers(module)
    if activations:
        return "activations", activations
    return "pre_activations", weight_layers(module)


def dead_fraction(output: torch.Tensor) -> torch.Tensor:
    """Share of units (dim 1: channels of a conv output, features of a linear one) that are
    zero for every sample and position of the batch: units that pass no gradient and so no
    longer learn."""
    units = output.shape[1] if output.dim() > 1 else 1
    alive = (output != 0).transpose(0, 1).reshape(units, -1).any(dim=1)
    return 1.0 - alive.float().mean()


def dead_rows(weight_grad: torch.Tensor) -> torch.Tensor:
    """Share of a weight layer's units (rows: output features, output channels) whose
    incoming weights got an exactly zero gradient from the whole batch."""
    rows = weight_grad.detach().flatten(1) if weight_grad.dim() > 1 else weight_grad.view(-1, 1)
    return (rows == 0).all(dim=1).float().mean()


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


def output_statistics(name: str, module: nn.Module, output: torch.Tensor,
                      margin: float = 0.05) -> dict[str, torch.Tensor]:
    """``act_mean``, ``act_std`` and, where the layer's kind has them, ``act_dead``,
    ``act_zero`` and ``act_saturated`` of one layer's output, as tensors on its device."""
    values = output.detach().float()
    std, mean = torch.std_mean(values) if values.numel() > 1 else (values.new_zeros(()), values.mean())
    stats = {f"act_mean/{name}": mean, f"act_std/{name}": std}
    if isinstance(module, RECTIFIER_TYPES):
        stats[f"act_dead/{name}"] = dead_fraction(values)
        stats[f"act_zero/{name}"] = zero_fraction(values)
    saturated = saturated_fraction(values, module, margin)
    if saturated is not None:
        stats[f"act_saturated/{name}"] = saturated
    return stats


def update_ratio(before: float, moved: float) -> float:
    """‖ΔW‖ / ‖W‖ of one step from the norms before and of the change; from a zero norm:
    0 when it did not move, ``inf`` when it did (no finite ratio exists)."""
    if before > 0:
        return moved / before
    return math.inf if moved > 0 else 0.0
