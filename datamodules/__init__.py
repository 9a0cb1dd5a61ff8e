"""Datamodules usable as ``class_path`` in configs: ``datamodules.MNISTDataModule``, ..."""

from netscope.datamodules.base import BaseDataModule, ImageDataModule
from netscope.datamodules.cifar import CIFAR10DataModule
from netscope.datamodules.image_folder import ImageFolderDataModule
from netscope.datamodules.mnist import FashionMNISTDataModule, MNISTDataModule
from netscope.datamodules.xor import XORDataModule

__all__ = [
    "BaseDataModule",
    "CIFAR10DataModule",
    "FashionMNISTDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "XORDataModule",
]
