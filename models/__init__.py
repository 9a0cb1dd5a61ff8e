"""Models usable as ``class_path`` in configs by bare name (``MLP``, ``ConvNet``) or as
``netscope.models.MLP``; :class:`Supervised` trains any ``torch.nn.Module``."""

from netscope.models.base import BaseModel
from netscope.models.convnet import ConvNet
from netscope.models.mlp import MLP
from netscope.models.torchvision_net import TorchvisionNet
from netscope.models.wrapped import Supervised, inspected

__all__ = ["BaseModel", "ConvNet", "MLP", "Supervised", "TorchvisionNet", "inspected"]
