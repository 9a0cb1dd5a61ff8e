"""Datamodule bases: data held as tensors in memory, batched by :class:`TensorLoader`.

A concrete datamodule declares what a model needs to know about it (``num_classes``,
``input_shape``, ``task``, ``class_names``; the CLI links these into the model) and loads
its splits as tensors (``load_splits``). Splitting, batching, DDP sharding, normalization
and augmentation are shared here.
"""

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.pytorch import LightningDataModule

from netscope.core.errors import UserError
from netscope.core.task import Task
from netscope.datamodules.augment import (
    alternating_flip,
    random_cutout,
    random_flip,
    random_translate,
)
from netscope.datamodules.loader import TensorLoader
from netscope.datamodules.splits import interleaved_order, split_indices

Split = tuple[torch.Tensor, torch.Tensor]
FlipMode = Literal["random", "alternate"]


class BaseDataModule(LightningDataModule):
    """A data set whose splits fit in memory as tensors.

    Subclasses set ``num_classes``, ``input_shape``, ``task`` and ``class_names`` by the end
    of ``__init__`` (the CLI reads them to build the model) and implement ``load_splits``.

    The arguments are described here, in the class docstring, where the command line's help
    finds them for every subclass too (``--data.help CIFAR10DataModule``).

    Args:
        data_dir: where the data set is, or is downloaded to when it is missing.
        batch_size: training batch size.
        eval_batch_size: batch size for validation, test and predict (default: ``batch_size``).
        val_fraction: share of the training set held out for validation when the data
            set has no validation split of its own.
        split_seed: seed of that hold-out split and of the test split's order (fixed, so
            every run validates and tests on the same samples whatever the training seed).
        keep_on_device: on a GPU, hold the splits in GPU memory when they fit, so
            batches are indexed there and never copied from the host.
    """

    num_classes: int
    input_shape: tuple[int, ...]
    task: Task = "classification"
    class_names: list[str]

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        keep_on_device: bool = True,
    ) -> None:
        """Check the batch sizes and the validation share (the arguments: see the class)."""
        super().__init__()
        if not 0.0 < val_fraction < 1.0:
            raise UserError(f"val_fraction must be between 0 and 1, got {val_fraction}")
        for name, size in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if size is not None and size < 1:
                raise UserError(f"--data.init_args.{name} must be at least 1, got {size}")
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.keep_on_device = keep_on_device
        self.splits: dict[str, Split] | None = None
        # The training shuffle's generator lives as long as the datamodule (not the loader),
        # and its state is in every checkpoint: a resumed fit draws the orders the
        # uninterrupted one would have drawn.
        self.shuffle_generator: torch.Generator | None = None

    @abstractmethod
    def load_splits(self) -> dict[str, Split]:
        """Return ``{"train": (x, y), "test": (x, y)}`` (``"val"`` too when the data set has one)."""

    def setup(self, stage: str) -> None:
        if self.splits is None:
            splits = self.load_splits()
            if "val" not in splits:
                splits["train"], splits["val"] = self.hold_out(splits["train"])
            self.splits = splits

    def hold_out(self, split: Split) -> tuple[Split, Split]:
        """Carve a validation split off ``split``: ``val_fraction`` of every class, seeded
        by ``split_seed`` (see :mod:`datamodules.splits`)."""
        inputs, targets = split
        index = split_indices(targets, {"val": self.val_fraction}, self.split_seed,
                              stratify=self.task != "regression")
        return ((inputs[index["train"]], targets[index["train"]]),
                (inputs[index["val"]], targets[index["val"]]))

    @property
    def has_test(self) -> bool:
        """Whether the data set has a test split (after ``setup``)."""
        return self.splits is not None and "test" in self.splits

    def loader_tensors(self, split: str, train: bool) -> tuple[torch.Tensor, ...]:
        """The tensors a loader of ``split`` batches together (inputs and targets here;
        subclasses may add per-sample tensors that their batch hooks consume)."""
        return self.splits[split]

    def _resident(self, split: str) -> None:
        """Move ``split`` to the training device once, when it fits (a quarter of the free
        memory at most), so batches are indexed where the model runs and never copied."""
        if self.trainer is None or not self.keep_on_device:
            return
        device = self.trainer.strategy.root_device
        tensors = self.splits[split]
        if device.type != "cuda" or all(t.device == device for t in tensors):
            return  # on CPU they are already there; other accelerators: batches are copied
        size = sum(t.numel() * t.element_size() for t in tensors)
        if size <= torch.cuda.mem_get_info(device)[0] // 4:
            self.splits[split] = tuple(t.to(device) for t in tensors)

    def test_order(self) -> torch.Tensor:
        """The fixed order the test split is evaluated in: shuffled with ``split_seed``, the
        classes interleaved (:func:`datamodules.splits.interleaved_order`), so that a test
        cut short with ``limit_test_batches`` still covers every class. The split itself
        stays as stored: ``predict`` and the export's parity check read it in that order."""
        return interleaved_order(self.splits["test"][1], self.split_seed,
                                 stratify=self.task != "regression")

    def _loader(self, split: str, train: bool = False, order: torch.Tensor | None = None
                ) -> TensorLoader | list:
        if self.splits is None or split not in self.splits:
            return []
        self._resident(split)
        rank, world_size = 0, 1
        if self.trainer is not None:
            rank, world_size = self.trainer.global_rank, self.trainer.world_size
        batch_size = self.batch_size if train else self.eval_batch_size
        # Training drops a last partial batch (a different one every pass): a batch of one
        # would break BatchNorm. Evaluation sees every sample.
        drop_last = train and len(self.splits[split][1]) // world_size >= batch_size
        return TensorLoader(
            self.loader_tensors(split, train),
            batch_size=batch_size,
            shuffle=train,
            drop_last=drop_last,
            generator=self._shuffle_generator() if train else None,
            rank=rank,
            world_size=world_size,
            even_shards=train,
            order=order,
        )

    def _shuffle_generator(self) -> torch.Generator:
        """The training shuffle's generator, seeded once from the global RNG (so
        seed_everything governs it, and every DDP rank draws the same seed, hence the same
        permutation to shard)."""
        if self.shuffle_generator is None:
            seed = int(torch.randint(2**62, ()).item())
            self.shuffle_generator = torch.Generator().manual_seed(seed)
        return self.shuffle_generator

    def state_dict(self) -> dict[str, Any]:
        """What the rest of a fit depends on: the training shuffle's generator state."""
        if self.shuffle_generator is None:
            return {}
        return {"shuffle_generator": self.shuffle_generator.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("shuffle_generator") is not None:
            self.shuffle_generator = torch.Generator()
            self.shuffle_generator.set_state(state_dict["shuffle_generator"])

    def prepare_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """Inputs as the model sees them at evaluation (no augmentation). Identity here."""
        return inputs

    def sample_inputs(self, count: int) -> torch.Tensor:
        """The first ``count`` training inputs, prepared as for evaluation: what a
        data-dependent initialization (e.g. ``init: whitening``) looks at."""
        if self.splits is None:
            self.setup("fit")
        return self.prepare_inputs(self.splits["train"][0][:count])

    def train_dataloader(self) -> TensorLoader | list:
        return self._loader("train", train=True)

    def val_dataloader(self) -> TensorLoader | list:
        return self._loader("val")

    def test_dataloader(self) -> TensorLoader | list:
        if self.splits is None or "test" not in self.splits:
            return []
        return self._loader("test", order=self.test_order())

    def predict_dataloader(self) -> TensorLoader | list:
        return self._loader("predict" if self.splits and "predict" in self.splits else "test")


class ImageDataModule(BaseDataModule):
    """Images kept as uint8 ``(N, C, H, W)`` tensors; converted, normalized and augmented
    per batch on the training device after transfer (no per-image work, no workers).

    Args:
        flip: mirror training images left-right.
        translate: shift training images by up to this many pixels (reflect padding).
        cutout: blank a square of this side at a random place in each training image.
        flip_mode: how ``flip`` mirrors: ``random`` (a coin per image and pass) or
            ``alternate`` (each image mirrored on every other epoch, from a random start).
    """

    #: Per-channel mean and std of the training images (in [0, 1] units).
    mean: Sequence[float] = (0.5,)
    std: Sequence[float] = (0.5,)

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        flip: bool = False,
        translate: int = 0,
        cutout: int = 0,
        flip_mode: FlipMode = "random",
        keep_on_device: bool = True,
    ) -> None:
        """Set the augmentations (the arguments: see the class and :class:`BaseDataModule`)."""
        super().__init__(data_dir=data_dir, batch_size=batch_size,
                         eval_batch_size=eval_batch_size, val_fraction=val_fraction,
                         split_seed=split_seed, keep_on_device=keep_on_device)
        self.flip = flip
        self.translate = translate
        self.cutout = cutout
        self.flip_mode = flip_mode
        self._flip_phase: torch.Tensor | None = None
        self._moments: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def loader_tensors(self, split: str, train: bool) -> tuple[torch.Tensor, ...]:
        """Adds, for alternating flips, each training image's random starting phase."""
        tensors = super().loader_tensors(split, train)
        if not (train and self.flip and self.flip_mode == "alternate"):
            return tensors
        if self._flip_phase is None or len(self._flip_phase) != len(tensors[1]):
            # Global RNG: seed_everything governs it, and every DDP rank draws the same bits.
            self._flip_phase = torch.rand(len(tensors[1])) < 0.5
        self._flip_phase = self._flip_phase.to(tensors[1].device)
        return (*tensors, self._flip_phase)

    def state_dict(self) -> dict[str, Any]:
        """Adds the alternating flips' per-image phase (drawn once per fit)."""
        state = super().state_dict()
        if self._flip_phase is not None:
            state["flip_phase"] = self._flip_phase.cpu()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if state_dict.get("flip_phase") is not None:
            self._flip_phase = state_dict["flip_phase"]

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[0, 255]`` to float, standardized per channel, in one fused step."""
        key = (images.device, tuple(self.mean), tuple(self.std))  # made once per device
        if key not in self._moments:
            std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1)
            mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1)
            self._moments[key] = (-mean / std, 1.0 / (255.0 * std))
        shift, scale = self._moments[key]
        return torch.addcmul(shift, images.float(), scale)

    def prepare_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.normalize(inputs) if inputs.dtype == torch.uint8 else inputs

    def augment(self, images: torch.Tensor, flip_phase: torch.Tensor | None = None) -> torch.Tensor:
        """The configured training augmentations, drawn per image."""
        if self.flip:
            if flip_phase is not None:
                epoch = self.trainer.current_epoch if self.trainer is not None else 0
                images = alternating_flip(images, flip_phase, epoch)
            else:
                images = random_flip(images)
        if self.translate:
            images = random_translate(images, self.translate)
        if self.cutout:
            images = random_cutout(images, self.cutout)
        return images

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        images, targets, *extra = batch
        images = self.prepare_inputs(images)
        if self.trainer is not None and self.trainer.training:
            images = self.augment(images, *extra)
        return images, targets
