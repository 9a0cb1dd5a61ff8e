"""What a deployed model takes and returns, independent of PyTorch.

A client sends inputs in the datamodule's own size and layout: uint8 ``(N, C, H, W)``
images, or float32 ``(N, D)`` vectors (XOR's points). The normalization training applied
(per-channel mean and std) is part of the spec, so the exported graph applies it and a
client never needs to know it. The spec travels inside the ONNX file as metadata, so a
server started from the file alone knows the classes and the input it expects.
"""

import json
from dataclasses import asdict, dataclass
from typing import Literal

from lightning.pytorch import LightningDataModule, LightningModule

from netscope.core.task import Task
from netscope.datamodules.base import ImageDataModule

InputKind = Literal["image", "vector"]


@dataclass(frozen=True)
class InputSpec:
    """Everything a client and the preprocessing need to know about one input.

    Attributes:
        kind: ``image`` (uint8 pixels, channels first) or ``vector`` (float32 values).
        shape: shape of one input without the batch dimension, e.g. ``(3, 64, 64)``.
        mean, std: per-channel normalization in [0, 1] units (images only; empty for vectors).
        class_names: one name per output class (regression: one per output).
        task: what the outputs mean (see :data:`core.task.Task`).
        tta: the test-time augmentation built into the graph.
    """

    kind: InputKind
    shape: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    task: Task
    tta: str = "none"

    @property
    def dtype(self) -> str:
        """The numpy dtype name of the input tensor."""
        return "uint8" if self.kind == "image" else "float32"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "InputSpec":
        fields = json.loads(text)
        for name in ("shape", "mean", "std", "class_names"):
            fields[name] = tuple(fields[name])
        return cls(**fields)


def input_spec(model: LightningModule, datamodule: LightningDataModule | None, tta: str) -> InputSpec:
    """The spec of ``model`` trained on ``datamodule`` (whose normalization state, e.g. an
    image folder's measured mean and std, must already be restored from the checkpoint)."""
    shape = tuple(int(d) for d in model.input_shape)
    names = tuple(model.class_names)
    if model.task == "binary":
        names = names if len(names) == 2 else ("0", "1")
    if isinstance(datamodule, ImageDataModule):
        if datamodule.mean is None:  # an image folder measures them from its training split
            datamodule.setup("fit")
        channels = shape[0] if len(shape) == 3 else 1
        mean, std = _per_channel(datamodule.mean, channels), _per_channel(datamodule.std, channels)
        return InputSpec("image", shape, mean, std, names, model.task, tta)
    return InputSpec("vector", shape, (), (), names, model.task, tta)


def _per_channel(values, channels: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in values)
    return values * channels if len(values) == 1 else values
