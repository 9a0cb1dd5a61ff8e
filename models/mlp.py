"""A multi-layer perceptron: flattens any input, so it runs on every datamodule."""

import math
from collections.abc import Sequence

import torch
from torch import nn

from netscope.models.base import BaseModel


class MLP(BaseModel):
    """Fully connected network: ``[Linear -> (BatchNorm) -> activation -> (Dropout)] * n -> Linear``.

    Hidden layers live in ``features`` (so their names read ``features.0.weight``,
    ``features.1`` for the first activation) and the output layer is ``head``.
    """

    def __init__(
        self,
        *args,
        hidden_sizes: Sequence[int] = (128, 64),
        dropout: float = 0.0,
        batch_norm: bool = False,
        **kwargs,
    ) -> None:
        """Build the hidden layers and the head; the other arguments are :class:`BaseModel`'s.

        Args:
            hidden_sizes: width of each hidden layer, input side first (``[]``: a linear model).
            dropout: dropout probability after each hidden activation.
            batch_norm: insert BatchNorm1d between each hidden Linear and its activation.
        """
        self.hidden_sizes = list(hidden_sizes)
        self.dropout = dropout
        self.batch_norm = batch_norm
        super().__init__(*args, **kwargs)

    def configure_network(self) -> None:
        layers: list[nn.Module] = []
        width = math.prod(self.input_shape)
        for hidden in self.hidden_sizes:
            layers.append(nn.Linear(width, hidden))
            if self.batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(self.make_activation())
            if self.dropout > 0:
                layers.append(nn.Dropout(self.dropout))
            width = hidden
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, self.output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.flatten(1)))
