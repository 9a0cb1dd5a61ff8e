"""Datamodules usable as ``class_path`` in configs by bare name (``MNISTDataModule``) or as
``netscope.datamodules.MNISTDataModule``; any ``LightningDataModule`` of a user's works too."""

from netscope.datamodules.base import BaseDataModule, ImageDataModule
from netscope.datamodules.cifar import CIFAR10DataModule
from netscope.datamodules.csv import CSVDataModule
from netscope.datamodules.image_folder import ImageFolderDataModule
from netscope.datamodules.mnist import FashionMNISTDataModule, MNISTDataModule
from netscope.datamodules.xor import XORDataModule

__all__ = [
    "BaseDataModule",
    "CIFAR10DataModule",
    "CSVDataModule",
    "FashionMNISTDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "XORDataModule",
]
