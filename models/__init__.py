"""Models usable as ``class_path`` in configs: ``models.MLP``, ``models.ConvNet``, ..."""

from models.base import BaseModel
from models.convnet import ConvNet
from models.mlp import MLP
from models.muon import MuonSGD
from models.torchvision_net import TorchvisionNet

__all__ = ["BaseModel", "ConvNet", "MLP", "MuonSGD", "TorchvisionNet"]
