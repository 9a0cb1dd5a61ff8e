"""Models usable as ``class_path`` in configs: ``models.MLP``, ``models.ConvNet``, ..."""

from netscope.models.base import BaseModel
from netscope.models.convnet import ConvNet
from netscope.models.mlp import MLP
from netscope.models.torchvision_net import TorchvisionNet

__all__ = ["BaseModel", "ConvNet", "MLP", "TorchvisionNet"]
