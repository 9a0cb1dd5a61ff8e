"""The one place where weight initializations are named and applied.

``apply_init`` really sets the weights of every ``Linear`` and ``Conv`` layer of the module
it is given (the course's own experiment initialized a tensor the network never used).
``whitening`` depends on data: it is applied by :func:`whitening_init` once training
images are at hand (the model does it when fit starts).
"""

from typing import Literal

import torch
from torch import nn
from torch.nn.utils import parametrize

from netscope.models.activations import ActivationName, gain_nonlinearity

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
    "whitening",
]

#: Schemes that need training data; ``apply_init`` leaves the weights to them.
DATA_DEPENDENT_INITS: tuple[InitName, ...] = ("whitening",)

#: Training inputs :func:`whitening_init` estimates the covariance from, and the
#: regularizer added to its eigenvalues (airbench's choices).
WHITENING_SAMPLES = 5000
WHITENING_EPS = 5e-4

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
        The number of layers whose weights were set (0 for ``default`` and for the
        data-dependent schemes, which :func:`whitening_init` applies later).
    """
    if init == "default" or init in DATA_DEPENDENT_INITS:
        return 0
    layers = [m for m in module.modules() if isinstance(m, INIT_LAYER_TYPES)]
    nonlinearity = gain_nonlinearity(activation)
    param = negative_slope if nonlinearity == "leaky_relu" else None
    gain = scale if scale is not None else nn.init.calculate_gain(nonlinearity, param)
    with torch.no_grad():
        for layer in layers:
            _init_weight(layer.weight, init, gain, scale)
            _zero_bias(layer)
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



def first_layer(module: nn.Module) -> nn.Linear | nn.Conv2d:
    """The first Linear or Conv2d layer of ``module`` in definition order."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            return layer
    raise ValueError("the module has no Linear or Conv2d layer to whiten")


def _patches(layer: nn.Linear | nn.Conv2d, inputs: torch.Tensor) -> torch.Tensor:
    """What one output unit of ``layer`` sees, one row per position: flattened inputs for a
    Linear layer, every (stride 1) ``kernel_size`` window for a Conv2d."""
    if isinstance(layer, nn.Linear):
        return inputs.flatten(1)
    kh, kw = layer.kernel_size
    if inputs.dim() == 3:
        inputs = inputs.unsqueeze(1)
    windows = inputs.unfold(2, kh, 1).unfold(3, kw, 1)  # (N, C, H', W', kh, kw)
    return windows.permute(0, 2, 3, 1, 4, 5).reshape(-1, inputs.shape[1] * kh * kw)


def whitening_init(module: nn.Module, inputs: torch.Tensor, eps: float = WHITENING_EPS) -> None:
    """Set the first layer of ``module`` to whiten its inputs, from a sample of them.

    Each output unit projects its input patch on one principal direction of the patches,
    scaled by ``1 / sqrt(eigenvalue + eps)``, in pairs of opposite sign (so a following
    rectifier keeps both halves): the layer's outputs start decorrelated and of unit
    variance along the top ``out / 2`` directions. This is airbench's whitening init; any
    first Linear or Conv2d layer qualifies (a Conv2d's patches are its kernel windows).
    Biases are set to zero; the other layers are left as they are.

    Args:
        module: the network; its first Linear/Conv2d layer is set.
        inputs: training inputs as the network sees them (normalized), e.g. a few thousand.
        eps: added to the eigenvalues, so faint directions are not blown up.
    """
    layer = first_layer(module)
    if isinstance(layer, nn.Conv2d) and (layer.groups != 1 or layer.dilation != (1, 1)):
        raise ValueError("whitening needs a plain first convolution (groups 1, dilation 1)")
    outputs = layer.weight.shape[0]
    dim = layer.weight[0].numel()
    if outputs % 2 or outputs // 2 > dim:
        raise ValueError(
            f"whitening fills an even number of outputs, at most 2 x {dim} (twice the size "
            f"of a patch) for this layer, which has {outputs}")
    covariance = torch.zeros(dim, dim, dtype=torch.float64)
    count = 0
    for chunk in inputs.float().cpu().split(500):  # bounded memory whatever the sample
        patches = _patches(layer, chunk).double()
        covariance += patches.T @ patches
        count += len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance / count)  # ascending
    keep = outputs // 2
    scale = (eigenvalues.flip(0)[:keep] + eps).rsqrt()
    top = eigenvectors.flip(1)[:, :keep].T * scale[:, None]  # (keep, dim), largest first
    weight = torch.cat([top, -top]).reshape(layer.weight.shape)
    with torch.no_grad():
        layer.weight.copy_(weight.to(layer.weight.dtype))
        _zero_bias(layer)


def stored_parameter(module: nn.Module, name: str) -> torch.Tensor | None:
    """The tensor the optimizer steps for ``module.<name>``: the stored original when the
    attribute is reparametrized (``module.<name>`` is then computed, and writing into it
    changes nothing), else the attribute itself."""
    if parametrize.is_parametrized(module, name):
        return getattr(module.parametrizations, name).original
    return getattr(module, name)


def _zero_bias(layer: nn.Module) -> None:
    bias = stored_parameter(layer, "bias")
    if bias is not None:
        bias.zero_()
