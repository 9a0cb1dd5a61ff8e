"""A fast CIFAR-class convolutional network (in the spirit of airbench's net)."""

import torch
from torch import nn

from models.base import BaseModel


class ConvNet(BaseModel):
    """Stem conv, then one block per width: ``conv -> maxpool -> BN -> act``, followed by
    ``depth - 1`` more ``conv -> BN -> act``; global max-pool and a linear head.

    Each block halves the resolution, so three blocks take 32x32 to 4x4 and 28x28 to 3x3.
    """

    def __init__(
        self,
        *args,
        widths: list[int] = [64, 256, 256],
        depth: int = 2,
        stem_width: int = 32,
        batch_norm: bool = True,
        dropout: float = 0.0,
        **kwargs,
    ) -> None:
        """Args:
            widths: channels of each block; its length is the number of blocks.
            depth: convolutions per block (at least 1).
            stem_width: channels of the first 3x3 convolution (before any pooling).
            batch_norm: BatchNorm after each convolution.
            dropout: dropout before the head.
            *args, **kwargs: see :class:`models.base.BaseModel`.
        """
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.widths = list(widths)
        self.depth = depth
        self.stem_width = stem_width
        self.batch_norm = batch_norm
        self.dropout = dropout
        super().__init__(*args, **kwargs)

    def _conv_bn_act(self, cin: int, cout: int, pool: bool = False) -> list[nn.Module]:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=not self.batch_norm)]
        if pool:
            layers.append(nn.MaxPool2d(2))
        if self.batch_norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(self.make_activation())
        return layers

    def configure_network(self) -> None:
        in_channels = self.input_shape[0] if len(self.input_shape) == 3 else 1
        blocks: list[nn.Module] = [nn.Sequential(*self._conv_bn_act(in_channels, self.stem_width))]
        width = self.stem_width
        for out in self.widths:
            layers = self._conv_bn_act(width, out, pool=True)
            for _ in range(self.depth - 1):
                layers += self._conv_bn_act(out, out)
            blocks.append(nn.Sequential(*layers))
            width = out
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            nn.Dropout(self.dropout) if self.dropout > 0 else nn.Identity(),
            nn.Linear(width, self.output_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:  # (N, H, W) grey images
            x = x.unsqueeze(1)
        return self.head(self.features(x))
