"""CIFAR-10: 32x32 colour images, 10 classes, 50k train / 10k test."""

from pathlib import Path

import torch
from torchvision import datasets

from netscope.datamodules.base import FlipMode, ImageDataModule, Split
from netscope.datamodules.download import load_torchvision
from netscope.datamodules.image_cache import decode_class_folder

CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck"]


class CIFAR10DataModule(ImageDataModule):
    """CIFAR-10 from either of two layouts in ``data_dir``:

    - torchvision's ``cifar-10-batches-py/`` (downloaded there when nothing is found), or
    - class folders ``train/<class>/*.jpg|png`` and ``test/<class>/...`` (how the offline
      copy ships: ``tar -xf cifar10-jpg.tar -C data/cifar10``), decoded once and cached.
    """

    num_classes = 10
    input_shape = (3, 32, 32)
    class_names = CLASSES
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)

    def __init__(
        self,
        data_dir: str = "data/cifar10",
        batch_size: int = 512,
        eval_batch_size: int | None = 1000,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        flip: bool = True,
        translate: int = 2,
        cutout: int = 0,
        cache_dir: str | None = None,
        flip_mode: FlipMode = "random",
        keep_on_device: bool = True,
    ) -> None:
        """CIFAR-10 with its own defaults; the other arguments are :class:`ImageDataModule`'s.

        Args:
            cache_dir: where decoded class-folder images are cached (default
                ``$NETSCOPE_CACHE_DIR`` or ``~/.cache/netscope``).
        """
        super().__init__(data_dir=data_dir, batch_size=batch_size,
                         eval_batch_size=eval_batch_size, val_fraction=val_fraction,
                         split_seed=split_seed, flip=flip, translate=translate, cutout=cutout,
                         flip_mode=flip_mode, keep_on_device=keep_on_device)
        self.cache_dir = cache_dir

    @property
    def _class_folders(self) -> bool:
        return (Path(self.data_dir) / "train").is_dir() and (Path(self.data_dir) / "test").is_dir()

    def prepare_data(self) -> None:
        if not self._class_folders:
            self._read_torchvision(train=True)

    def _read_torchvision(self, train: bool) -> Split:
        expected = ("cifar-10-batches-py/ (torchvision's format), or class folders train/<class>/*.jpg "
                    "and test/<class>/*.jpg (for the offline copy: mkdir -p data/cifar10 && "
                    "tar -xf ../shared/data/cifar10/cifar10-jpg.tar -C data/cifar10)")
        dataset = load_torchvision(datasets.CIFAR10, self.data_dir, expected, train=train)
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
        return images, torch.as_tensor(dataset.targets, dtype=torch.long)

    def _read_folder(self, split: str) -> Split:
        decoded = decode_class_folder(Path(self.data_dir) / split, classes=CLASSES,
                                      cache_dir=self.cache_dir)
        return decoded.images, decoded.labels

    def load_splits(self) -> dict[str, Split]:
        if self._class_folders:
            return {"train": self._read_folder("train"), "test": self._read_folder("test")}
        return {"train": self._read_torchvision(train=True), "test": self._read_torchvision(train=False)}
