"""MNIST and Fashion-MNIST: 28x28 grey images, 10 classes, 60k train / 10k test."""

import torch
from torchvision import datasets

from netscope.core.errors import UserError
from netscope.datamodules.base import ImageDataModule, Split
from netscope.datamodules.download import load_torchvision
from netscope.datamodules.splits import interleaved_order


class MNISTDataModule(ImageDataModule):
    """Handwritten digits, read with torchvision (downloaded into ``data_dir`` if missing).

    A local copy works offline: ``data_dir`` must hold ``MNIST/raw/*-ubyte``.

    Args:
        train_size: train on this many images of the training split only (default: all of
            them), taken after the validation split is held out. The subset is drawn by a
            generator of its own, seeded with ``split_seed`` and never with the run's seed,
            and holds every class in proportion (:func:`datamodules.splits.interleaved_order`):
            every seed of a study trains on the same images, as full-batch gradient descent
            on a small subset (``configs/edge_of_stability.yaml``) needs.
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
        train_size: int | None = None,
    ) -> None:
        """MNIST with its own defaults; ``train_size``: see the class, the other arguments
        are :class:`ImageDataModule`'s."""
        super().__init__(data_dir=data_dir, batch_size=batch_size,
                         eval_batch_size=eval_batch_size, val_fraction=val_fraction,
                         split_seed=split_seed, flip=flip, translate=translate, cutout=cutout)
        if train_size is not None and train_size < 1:
            raise UserError(f"--data.init_args.train_size must be at least 1, got {train_size} "
                            f"(leave it out to train on the whole training split).")
        self.train_size = train_size

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

    def setup(self, stage: str) -> None:
        """Load and split once; then keep ``train_size`` training images, when it is set."""
        fresh = self.splits is None
        super().setup(stage)
        if fresh and self.train_size is not None:
            self.splits["train"] = self.subset(self.splits["train"], self.train_size)

    def subset(self, split: Split, size: int) -> Split:
        """``size`` samples of ``split``, every class in proportion, in their stored order:
        the first ``size`` of a fixed interleaved order seeded with ``split_seed`` alone."""
        inputs, targets = split
        if size > len(targets):
            held_out = len(self.splits["val"][1])
            raise UserError(
                f"--data.init_args.train_size {size} is more than the {len(targets)} training "
                f"images {self.dataset_class.__name__} has after the validation split "
                f"(val_fraction {self.val_fraction} holds out {held_out} of "
                f"{len(targets) + held_out}). Choose at most {len(targets)}, or leave "
                f"train_size out to train on all of them.")
        keep = interleaved_order(targets, self.split_seed)[:size].sort().values
        return inputs[keep], targets[keep]


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
