"""A fast CIFAR-class convolutional network (in the spirit of airbench's net)."""

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from netscope.core.errors import UserError
from netscope.models.base import BaseModel
from netscope.models.initialization import stored_parameter


class ConvNet(BaseModel):
    """Stem conv, then one block per width: ``conv -> maxpool -> BN -> act``, followed by
    ``depth - 1`` more ``conv -> BN -> act``; global max-pool and a linear head.

    Each block halves the resolution, so three blocks take 32x32 to 4x4 and 28x28 to 3x3.
    With ``stem_kernel_size: 2`` (no padding, 32 -> 31), ``stem_width: 24``, ``stem_norm:
    false`` and ``init: whitening`` the stem is airbench's 2x2 patch-whitening layer.
    """

    def __init__(
        self,
        *args,
        widths: Sequence[int] = (64, 256, 256),
        depth: int = 2,
        stem_width: int = 32,
        batch_norm: bool = True,
        dropout: float = 0.0,
        stem_kernel_size: int = 3,
        stem_norm: bool = True,
        freeze_stem: bool = False,
        stem_bias_epochs: int | None = None,
        stem_bias_decay: bool = False,
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-5,
        bn_weight: bool = True,
        dirac_init: bool = False,
        head_scale: float = 1.0,
        head_bias: bool = True,
        bn_bias_lr_scale: float = 1.0,
        stem_bias_lr_scale: float = 1.0,
        **kwargs,
    ) -> None:
        """Build the stem, the blocks and the head; the other arguments are :class:`BaseModel`'s.

        Args:
            widths: channels of each block; its length is the number of blocks.
            depth: convolutions per block (at least 1).
            stem_width: channels of the first convolution (before any pooling).
            batch_norm: BatchNorm after each convolution.
            dropout: dropout before the head.
            stem_kernel_size: kernel size of the first convolution; odd sizes pad to keep
                the resolution, even sizes do not pad.
            stem_norm: BatchNorm after the stem too (with ``batch_norm``); without it the
                stem convolution has a bias.
            freeze_stem: do not train the stem's weights (e.g. after ``init: whitening``);
                its bias still trains.
            stem_bias_epochs: train the stem's bias for this many epochs only, then freeze
                it (airbench: 3, after which the first block skips its input gradient, a few
                percent of a step); ``None`` trains it throughout. Needs ``stem_norm: false``
                (with a norm the stem has no bias).
            stem_bias_decay: with ``stem_bias_epochs``, the bias's rate decays linearly from
                its full value to zero over those epochs, on its own schedule, where
                otherwise it follows the fit's schedule until it freezes (airbench94_muon
                decays it to zero over its 3 epochs). Its own parameter group. With
                ``stem_bias_epochs: null`` (the bias trains throughout) it has no effect.
            bn_momentum: BatchNorm running-statistics momentum (PyTorch's convention: the
                weight of the new batch); higher follows the changing weights of a short
                training more closely.
            bn_eps: BatchNorm epsilon.
            bn_weight: train the BatchNorm scales; when false they stay 1 and only the
                shifts train (the scale is redundant with the next layer's weights).
            dirac_init: after ``init``, make each block convolution pass its input through
                unchanged on its first ``in_channels`` outputs (identity initialization).
            head_scale: multiply the logits by this constant; below 1 it slows the head
                relative to the rest of the network (airbench uses 1/9).
            head_bias: give the head a bias (airbench's head has none: with balanced
                classes a bias only learns the label frequencies, which are equal).
            bn_bias_lr_scale: the BatchNorm shifts learn this many times faster than the
                other weights under SGD, at the same relative weight decay (airbench uses
                64). Done by reparametrization (``torch.nn.utils.parametrize``: the stored
                parameter is ``bias / sqrt(scale)``), so it works with any optimizer from the
                command line; for Adam-type optimizers the speed-up is ``sqrt(scale)``.
            stem_bias_lr_scale: the same for the stem's bias (``stem_norm: false``);
                airbench94_muon trains its whitening bias as fast as the BatchNorm shifts.
        """
        if depth < 1:
            raise UserError("depth must be at least 1")
        stem_has_bias = not (stem_norm and batch_norm)
        if stem_bias_epochs is not None and (not stem_has_bias or stem_bias_epochs < 0):
            raise UserError("stem_bias_epochs needs stem_norm: false (a stem with a bias) and "
                            "a count >= 0")
        if stem_bias_lr_scale != 1.0 and not stem_has_bias:
            raise UserError("stem_bias_lr_scale needs stem_norm: false (a stem with a bias)")
        for name, scale in (("bn_bias_lr_scale", bn_bias_lr_scale),
                            ("stem_bias_lr_scale", stem_bias_lr_scale)):
            if scale <= 0:
                raise UserError(f"{name} must be positive (got {scale}): it multiplies a "
                                f"learning rate")
        self.widths = list(widths)
        self.depth = depth
        self.stem_width = stem_width
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.stem_kernel_size = stem_kernel_size
        self.stem_norm = stem_norm
        self.freeze_stem = freeze_stem
        self.stem_bias_epochs = stem_bias_epochs
        self.stem_bias_decay = stem_bias_decay and stem_bias_epochs is not None
        self.bn_momentum = bn_momentum
        self.bn_eps = bn_eps
        self.bn_weight = bn_weight
        self.dirac_init = dirac_init
        self.head_scale = head_scale
        self.head_bias = head_bias
        self.bn_bias_lr_scale = bn_bias_lr_scale
        self.stem_bias_lr_scale = stem_bias_lr_scale
        super().__init__(*args, **kwargs)

    def _norm(self, channels: int) -> nn.BatchNorm2d:
        norm = nn.BatchNorm2d(channels, eps=self.bn_eps, momentum=self.bn_momentum)
        norm.weight.requires_grad_(self.bn_weight)
        _scale_bias_lr(norm, self.bn_bias_lr_scale)
        return norm

    def _conv_bn_act(self, cin: int, cout: int, pool: bool = False) -> list[nn.Module]:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=not self.batch_norm)]
        if pool:
            layers.append(nn.MaxPool2d(2))
        if self.batch_norm:
            layers.append(self._norm(cout))
        layers.append(self.make_activation())
        return layers

    def _stem(self, in_channels: int) -> nn.Sequential:
        size = self.stem_kernel_size
        norm = self.batch_norm and self.stem_norm
        conv = nn.Conv2d(in_channels, self.stem_width, size, padding=size // 2 if size % 2 else 0,
                         bias=not norm)
        conv.weight.requires_grad_(not self.freeze_stem)
        if not norm:
            _scale_bias_lr(conv, self.stem_bias_lr_scale)
        return nn.Sequential(conv, *([self._norm(self.stem_width)] if norm else []),
                             self.make_activation())

    def configure_network(self) -> None:
        in_channels = self.input_shape[0] if len(self.input_shape) == 3 else 1
        blocks: list[nn.Module] = [self._stem(in_channels)]
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
            nn.Linear(width, self.output_dim, bias=self.head_bias),
        )

    def initialize_weights(self) -> None:
        super().initialize_weights()
        if not self.dirac_init:
            return
        with torch.no_grad():
            for block in self.features[1:]:
                for conv in (m for m in block.modules() if isinstance(m, nn.Conv2d)):
                    if conv.out_channels >= conv.in_channels:
                        nn.init.dirac_(conv.weight[: conv.in_channels])

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        if self.stem_bias_epochs is not None:
            bias = stored_parameter(self.features[0][0], "bias")
            bias.requires_grad_(self.current_epoch < self.stem_bias_epochs)

    def parameter_groups(self) -> Any:
        """The stem's bias in a group of its own (``stem_bias``) when it has its own schedule."""
        if not self.stem_bias_decay:
            return super().parameter_groups()
        bias = stored_parameter(self.features[0][0], "bias")
        rest = [p for p in self.parameters() if p is not bias]
        return [{"params": rest}, {"params": [bias], "name": "stem_bias"}]

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """The stem bias's rate: its first rate times ``1 - step / (stem_bias_epochs steps)``,
        set before every step (computed from the step count, so a resumed fit sets the same)."""
        if not self.stem_bias_decay:
            return
        per_epoch = math.ceil(self.trainer.num_training_batches
                              / self.trainer.accumulate_grad_batches)
        left = max(0.0, 1.0 - self.trainer.global_step / max(1, self.stem_bias_epochs * per_epoch))
        for group in optimizer.param_groups:
            if group.get("name") == "stem_bias":
                group["lr"] = group.setdefault("initial_lr", group["lr"]) * left

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:  # (N, H, W) grey images
            x = x.unsqueeze(1)
        logits = self.head(self.features(x))
        return logits * self.head_scale if self.head_scale != 1.0 else logits


def _scale_bias_lr(layer: nn.Module, scale: float) -> None:
    """Make ``layer``'s bias learn ``scale`` times faster under SGD (see ``_Scaled``)."""
    if scale != 1.0:
        parametrize.register_parametrization(layer, "bias", _Scaled(math.sqrt(scale)))


class _Scaled(nn.Module):
    """``weight = factor * stored``: gradient steps on ``stored`` move ``weight`` ``factor**2``
    times as far (SGD), the "equalized learning rate" reparametrization."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, stored: torch.Tensor) -> torch.Tensor:
        return stored * self.factor

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return weight / self.factor
