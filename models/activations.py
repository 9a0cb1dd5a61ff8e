"""The one place where activation functions are named.

Every model builds its non-linearities here, as ``nn.Module`` instances inside the
network, so that diagnostics can find them (``ACTIVATION_TYPES``) and hook them.
"""

from typing import Literal

from torch import nn

ActivationName = Literal[
    "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "elu", "selu", "silu", "identity"
]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "silu": nn.SiLU,
    "identity": nn.Identity,
}

#: Module types the activation diagnostics hook: netscope's own, and the other element-wise
#: non-linearities of ``torch.nn`` that users' models build (``nn.Identity`` is left out:
#: torchvision uses it as a placeholder, so it says nothing about a non-linearity; softmax and
#: attention are not per-unit activations).
ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    *(cls for name, cls in _ACTIVATIONS.items() if name != "identity"),
    nn.ReLU6, nn.PReLU, nn.RReLU, nn.CELU, nn.Mish, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish,
    nn.Softplus, nn.Softsign, nn.LogSigmoid, nn.Tanhshrink,
)

#: Activations whose output saturates at asymptotes (the Glorot & Bengio 2010 analysis).
SATURATING_TYPES: tuple[type[nn.Module], ...] = (nn.Sigmoid, nn.Tanh)

#: Activations that output exact zeros for negative input ("dead" units).
RECTIFIER_TYPES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)


def make_activation(name: ActivationName, negative_slope: float = 0.01) -> nn.Module:
    """Return a fresh activation module for ``name``.

    Args:
        name: one of :data:`ActivationName`.
        negative_slope: slope of ``leaky_relu`` for negative inputs (the course used 0.2).
    """
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}")
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    return _ACTIVATIONS[name]()


def gain_nonlinearity(name: ActivationName) -> str:
    """Map an activation to the name ``torch.nn.init.calculate_gain`` understands.

    GELU, ELU and SiLU have no entry there; they behave like ReLU for positive inputs, so
    the ReLU gain is the usual choice for them.
    """
    match name:
        case "relu" | "gelu" | "elu" | "silu":
            return "relu"
        case "leaky_relu" | "sigmoid" | "tanh" | "selu":
            return name
        case _:
            return "linear"
