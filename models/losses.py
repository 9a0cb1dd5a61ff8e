"""The training loss of a model, by task and by the ``loss`` option.

``default`` is the usual loss of each task: cross-entropy for classification, binary
cross-entropy on the logit for ``binary``, mean squared error for regression. ``mse`` trains
classifiers with the squared error instead, between the logits and the one-hot targets, as
Cohen et al. (ICLR 2021, "Gradient descent on neural networks typically occurs at the edge
of stability") do: the sharpness dynamics of full-batch gradient descent are cleanest there.
For regression ``mse`` is the default loss.
"""

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from netscope.core.task import Task

LossName = Literal["default", "mse"]


class OneHotMSELoss(nn.Module):
    """Mean squared error between logits ``(N, K)`` and the one-hot encoding of class
    indices ``(N,)``, averaged over all ``N * K`` entries (as ``nn.MSELoss`` averages).

    ``label_smoothing`` mixes the one-hot targets with the uniform distribution, as
    ``nn.CrossEntropyLoss`` does: ``(1 - e) * one_hot + e / K``. ``K`` is the width of
    the outputs, so a wrapped network whose class count is read off its outputs works too.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        classes = outputs.shape[-1]
        one_hot = F.one_hot(targets, classes).to(outputs.dtype)
        if self.label_smoothing:
            one_hot = one_hot * (1.0 - self.label_smoothing) + self.label_smoothing / classes
        return F.mse_loss(outputs, one_hot)


def make_loss(task: Task, loss: LossName = "default", label_smoothing: float = 0.0) -> nn.Module:
    """The loss module of ``task`` under the ``loss`` option (see the module docstring).

    ``binary`` with ``mse``: the squared error between the logit and the 0/1 target.
    """
    if loss == "mse":
        return OneHotMSELoss(label_smoothing) if task == "classification" else nn.MSELoss()
    match task:
        case "classification":
            return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        case "binary":
            return nn.BCEWithLogitsLoss()
        case _:
            return nn.MSELoss()
