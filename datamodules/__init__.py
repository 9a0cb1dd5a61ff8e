"""Datamodules usable as ``class_path`` in configs: ``datamodules.MNISTDataModule``, ..."""

from datamodules.base import BaseDataModule, ImageDataModule
from datamodules.cifar import CIFAR10DataModule
from datamodules.image_folder import ImageFolderDataModule
from datamodules.mnist import FashionMNISTDataModule, MNISTDataModule
from datamodules.xor import XORDataModule

__all__ = [
    "BaseDataModule",
    "CIFAR10DataModule",
    "FashionMNISTDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "XORDataModule",
]
