"""Any folder of class sub-folders (``<data_dir>/<class>/<image>``) as a datamodule.

Class names are read from the folder names when the datamodule is built (so the CLI can
link their number into the model), the images are decoded in ``setup`` (once, then from
the cache in :mod:`datamodules.image_cache`). The split is either the folder's own
``train/``, ``val/``, ``test/`` sub-folders or a seeded, stratified one.
"""

import warnings
from pathlib import Path
from typing import Any

import torch

from netscope.core.errors import UserError
from netscope.datamodules.augment import random_flip
from netscope.datamodules.base import FlipMode, ImageDataModule, Split
from netscope.datamodules.image_cache import (
    DecodedImages,
    decode_class_folder,
    decode_folder,
    scan_class_folder,
)
from netscope.datamodules.image_files import MAX_PIXELS
from netscope.datamodules.splits import split_indices

#: Sub-folder names that mark a folder already split into train/validation/test.
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


class ImageFolderDataModule(ImageDataModule):
    """Images in class folders, of any size and mode, resized to ``image_size`` RGB.

    Normalization uses the per-channel mean and std of the training split (computed on
    the uint8 tensors in ``setup``; saved in checkpoints, so ``predict`` normalizes exactly
    as training did). The ``predict`` split is every image under ``predict_dir``, without
    labels, batched as ``(images, index)``; :attr:`predict_files` maps an index to its file.
    """

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        image_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        strict: bool = False,
        cache_dir: str | None = None,
        predict_dir: str | None = None,
        flip: bool = False,
        vflip: bool = False,
        translate: int = 0,
        cutout: int = 0,
        flip_mode: FlipMode = "random",
        keep_on_device: bool = True,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        """List the class folders (the images are decoded in ``setup``); the other arguments
        are :class:`ImageDataModule`'s.

        Args:
            data_dir: folder with one sub-folder per class, or with ``train/`` (and
                ``val/``, ``test/``) sub-folders each holding the class folders.
            batch_size: training batch size.
            eval_batch_size: batch size for validation, test and predict (default: ``batch_size``).
            image_size: every image is resized to ``image_size`` x ``image_size``.
            val_fraction: share of each class held out for validation (when the folder has
                no ``val/`` of its own).
            test_fraction: share of each class held out for testing (when the folder has no
                ``train/`` split of its own); 0 for no test split.
            split_seed: seed of that split (fixed, so every run sees the same split).
            strict: stop with an error on an unreadable image instead of skipping it.
            cache_dir: where decoded images are cached (default ``$NETSCOPE_CACHE_DIR`` or
                ``~/.cache/netscope``); never inside ``data_dir``.
            predict_dir: folder of new images (any depth, no labels) for ``predict``.
            max_pixels: an image over this many pixels (width x height; a JPEG at the scale
                it is decoded at) is skipped with a warning before it is decoded: a small
                file can declare a huge image. Default 4096 x 4096.
            vflip: also mirror training images top-bottom at random (for images with no
                "up", e.g. seen from above: satellite, microscopy).
        """
        if not (0.0 < val_fraction and 0.0 <= test_fraction and val_fraction + test_fraction < 1.0):
            raise UserError(f"val_fraction ({val_fraction}) must be above 0 and test_fraction "
                            f"({test_fraction}) at least 0, summing to less than 1 "
                            f"(images left to train on).")
        if image_size < 1:
            raise UserError(f"image_size must be a positive number of pixels, got {image_size}.")
        if max_pixels < image_size * image_size:
            raise UserError(f"max_pixels ({max_pixels}) is below image_size x image_size "
                            f"({image_size * image_size}): every image would be skipped.")
        super().__init__(data_dir=data_dir, batch_size=batch_size,
                         eval_batch_size=eval_batch_size, val_fraction=val_fraction,
                         split_seed=split_seed, flip=flip, translate=translate, cutout=cutout,
                         flip_mode=flip_mode, keep_on_device=keep_on_device)
        self.image_size = image_size
        self.vflip = vflip
        self.test_fraction = test_fraction
        self.strict = strict
        self.cache_dir = cache_dir
        self.predict_dir = predict_dir
        self.max_pixels = max_pixels
        self.split_dirs = self._find_split_dirs(Path(data_dir))
        # Listing files is cheap; decoding waits for setup. This also fails early on an
        # empty class folder.
        self.class_names = scan_class_folder(self.split_dirs.get("train", Path(data_dir)))[0]
        self.num_classes = len(self.class_names)
        if self.num_classes < 2:
            raise UserError(f"'{data_dir}' has one class folder ({self.class_names[0]}); a "
                            f"classifier needs at least two. Put each class's images in its own "
                            f"sub-folder: {data_dir}/<class>/<image files>.")
        self.input_shape = (3, image_size, image_size)
        self.mean: tuple[float, ...] | None = None
        self.std: tuple[float, ...] | None = None
        self.predict_files: list[str] = []
        self.predict_skipped: dict[str, str] = {}

    @staticmethod
    def _find_split_dirs(root: Path) -> dict[str, Path]:
        """``{"train": ..., "val": ..., "test": ...}`` when ``root`` is split into such folders."""
        if not root.is_dir():
            return {}
        folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        if not any(p.name.lower() == "train" for p in folders):
            return {}
        if any(p.name.lower() not in SPLIT_FOLDERS for p in folders):
            return {}  # "train" is just one of the classes
        return {SPLIT_FOLDERS[p.name.lower()]: p for p in folders}

    # ------------------------------------------------------------------- decoding
    def _decode(self, folder: Path) -> DecodedImages:
        return decode_class_folder(folder, None, self.image_size, self.cache_dir, self.strict, self.max_pixels)

    def load_splits(self) -> dict[str, Split]:
        if not self.split_dirs:
            decoded = self._decode(Path(self.data_dir))
            return self.stratified_split(decoded.images, decoded.labels)
        splits = {}
        for split, folder in self.split_dirs.items():
            extra = sorted(set(scan_class_folder(folder)[0]) - set(self.class_names))
            if extra:
                raise UserError(f"'{folder}' has class folders that '{self.split_dirs['train']}' lacks: "
                                f"{', '.join(extra)}. Every class must have training images.")
            decoded = decode_class_folder(folder, None if split == "train" else self._classes_in(folder),
                                          self.image_size, self.cache_dir, self.strict, self.max_pixels)
            # Labels follow the training folder's class order, whatever this folder holds.
            to_train_label = torch.tensor([self.class_names.index(name) for name in decoded.classes])
            splits[split] = (decoded.images, to_train_label[decoded.labels])
        if "val" not in splits:
            splits["train"], splits["val"] = self.hold_out(splits["train"])
        return splits

    def _classes_in(self, folder: Path) -> list[str]:
        return [name for name in self.class_names if (folder / name).is_dir()]

    def stratified_split(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, Split]:
        """Test, validation and training shares (``test_fraction``, ``val_fraction``) of
        every class, seeded by ``split_seed`` (see :mod:`datamodules.splits`)."""
        index = split_indices(labels, {"test": self.test_fraction, "val": self.val_fraction},
                              self.split_seed)
        return {split: (images[rows], labels[rows]) for split, rows in index.items()
                if len(rows) or split != "test"}

    def setup(self, stage: str) -> None:
        splits = self.splits if self.splits is not None else {}
        if stage == "predict":
            if "predict" not in splits:
                splits["predict"] = self._load_predict()
        elif "train" not in splits:
            splits |= self.load_splits()
        self.splits = splits
        if self.mean is None and "train" in splits:
            self._fit_normalization(splits["train"][0])

    def _load_predict(self) -> Split:
        if not self.predict_dir:
            raise UserError("predict needs the folder of images to classify: "
                            "--data.init_args.predict_dir <folder>.")
        decoded = decode_folder(self.predict_dir, self.image_size, self.cache_dir, self.strict, self.max_pixels)
        self.predict_files = [str(Path(self.predict_dir) / name) for name in decoded.files]
        self.predict_skipped = decoded.skipped
        return decoded.images, torch.arange(len(decoded.files))

    def augment(self, images: torch.Tensor, flip_phase: torch.Tensor | None = None) -> torch.Tensor:
        images = super().augment(images, flip_phase)
        if self.vflip:  # a left-right flip of the transposed image is a top-bottom flip
            images = random_flip(images.transpose(-1, -2)).transpose(-1, -2)
        return images

    # -------------------------------------------------------------- normalization
    def _fit_normalization(self, images: torch.Tensor) -> None:
        """Per-channel mean and std of ``images`` (uint8), in [0, 1] units."""
        # Exact integer sums, in chunks: never a float copy of the whole set.
        total = torch.zeros(3, dtype=torch.int64)
        squares = torch.zeros(3, dtype=torch.int64)
        for chunk in images.split(1024):
            pixels = chunk.to(torch.int32)
            total += pixels.sum((0, 2, 3), dtype=torch.int64).cpu()
            squares += pixels.square_().sum((0, 2, 3), dtype=torch.int64).cpu()
        count = images.numel() / 3
        mean = total.double() / count / 255
        std = (squares.double() / count / 255**2 - mean.square()).clamp_min(0).sqrt().clamp_min(1 / 255)
        self._set_normalization(mean.tolist(), std.tolist())

    def _set_normalization(self, mean: list[float], std: list[float]) -> None:
        self.mean, self.std = tuple(mean), tuple(std)
        getattr(self, "_moments", {}).clear()  # the base class caches them per device

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        if self.mean is None:  # predict without a checkpoint: use the training split's statistics
            self._fit_normalization(self.load_splits()["train"][0])
        return super().normalize(images)

    def state_dict(self) -> dict[str, Any]:
        """What ``predict`` from a checkpoint needs to prepare images as training did."""
        return {**super().state_dict(), "class_names": self.class_names,
                "image_size": self.image_size, "mean": list(self.mean or []),
                "std": list(self.std or [])}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if state_dict.get("class_names", self.class_names) != self.class_names:
            raise UserError(f"The checkpoint was trained on the classes {state_dict['class_names']}, but "
                            f"'{self.data_dir}' has {self.class_names}. Point --data.init_args.data_dir "
                            f"at the folder the model was trained on.")
        if state_dict.get("image_size", self.image_size) != self.image_size:
            warnings.warn(f"The checkpoint was trained on {state_dict['image_size']}px images; "
                          f"these are resized to {self.image_size}px.", stacklevel=2)
        if state_dict.get("mean"):
            self._set_normalization(state_dict["mean"], state_dict["std"])
