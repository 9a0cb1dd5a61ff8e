"""MNIST and Fashion-MNIST: 28x28 grey images, 10 classes, 60k train / 10k test."""

import torch
from torchvision import datasets

from netscope.datamodules.base import ImageDataModule, Split
from netscope.datamodules.download import load_torchvision


class MNISTDataModule(ImageDataModule):
    """Handwritten digits, read with torchvision (downloaded into ``data_dir`` if missing).

    A local copy works offline: ``data_dir`` must hold ``MNIST/raw/*-ubyte``.
    """

    dataset_class = datasets.MNIST
    num_classes = 10
    input_shape = (1, 28, 28)
    class_names = [str(i) for i in range(10)]
    mean = (0.1307,)
    std = (0.3081,)

    def __init__(
        self,
        data_dir: str = "data/mnist",
        batch_size: int = 64,
        eval_batch_size: int | None = 1000,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        flip: bool = False,
        translate: int = 0,
        cutout: int = 0,
    ) -> None:
        """MNIST with its own defaults; the arguments are :class:`ImageDataModule`'s."""
        super().__init__(data_dir=data_dir, batch_size=batch_size,
                         eval_batch_size=eval_batch_size, val_fraction=val_fraction,
                         split_seed=split_seed, flip=flip, translate=translate, cutout=cutout)

    def prepare_data(self) -> None:
        self._read(train=True)
        self._read(train=False)

    def _read(self, train: bool) -> Split:
        name = self.dataset_class.__name__
        expected = f"{name}/raw/ with the four *-ubyte files (train/t10k images and labels)"
        dataset = load_torchvision(self.dataset_class, self.data_dir, expected, train=train)
        images = dataset.data.unsqueeze(1).contiguous()  # (N, 1, 28, 28) uint8
        return images, torch.as_tensor(dataset.targets, dtype=torch.long)

    def load_splits(self) -> dict[str, Split]:
        return {"train": self._read(train=True), "test": self._read(train=False)}


class FashionMNISTDataModule(MNISTDataModule):
    """Zalando's Fashion-MNIST: clothing in the MNIST format (``FashionMNIST/raw/``)."""

    dataset_class = datasets.FashionMNIST
    class_names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    mean = (0.2860,)
    std = (0.3530,)

    def __init__(self, data_dir: str = "data/fashion-mnist", **kwargs) -> None:
        """Only the default ``data_dir`` differs; see :class:`MNISTDataModule`."""
        super().__init__(data_dir=data_dir, **kwargs)
