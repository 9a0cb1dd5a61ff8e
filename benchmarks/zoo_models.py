"""Deliberately broken models for the doctor's fault zoo (``benchmarks/zoo.py``).

Usable as ``--model benchmarks.zoo_models.ScaledHeadMLP``: each is the MLP with one fault a
config cannot express (a head scaled up, hidden biases pushed negative).
"""

import torch

from netscope.models.mlp import MLP


class ScaledHeadMLP(MLP):
    """The MLP with its output layer's weights multiplied by ``head_scale`` after init."""

    def __init__(self, *args, head_scale: float = 100.0, **kwargs) -> None:
        self.head_scale = head_scale
        super().__init__(*args, **kwargs)

    def initialize_weights(self) -> None:
        super().initialize_weights()
        with torch.no_grad():
            self.head.weight.mul_(self.head_scale)


class ShiftedBiasMLP(MLP):
    """The MLP with every hidden bias set to ``hidden_bias`` after init (negative: units
    that start, and stay, on the flat side of their ReLU)."""

    def __init__(self, *args, hidden_bias: float = -5.0, **kwargs) -> None:
        self.hidden_bias = hidden_bias
        super().__init__(*args, **kwargs)

    def initialize_weights(self) -> None:
        super().initialize_weights()
        with torch.no_grad():
            for module in self.features:
                if isinstance(module, torch.nn.Linear):
                    module.bias.fill_(self.hidden_bias)
