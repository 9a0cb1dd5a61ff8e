"""XOR (the course's Lab01): the four points of the truth table."""

import torch

from netscope.core.task import Task
from netscope.datamodules.base import BaseDataModule, Split
from netscope.datamodules.loader import TensorLoader


class XORDataModule(BaseDataModule):
    """The four XOR points; training sees them ``repeats`` times per epoch, in order, so
    that with ``batch_size=4`` every step is a full-batch step on the whole truth table.

    Validation and test are the same four points: XOR has nothing else to generalize to.
    ``task="binary"`` (one logit, BCE) or ``"classification"`` (two logits) report
    accuracy; ``"regression"`` fits the 0/1 target with MSE like the course did.
    """

    input_shape = (2,)

    def __init__(
        self,
        data_dir: str = "",
        batch_size: int = 4,
        task: Task = "binary",
        repeats: int = 1,
    ) -> None:
        """The four points, posed as ``task``.

        Args:
            data_dir: unused (XOR needs no files); kept so every datamodule takes it.
            batch_size: training batch size.
            task: how the target is posed (see :data:`core.task.Task`).
            repeats: copies of the four points per training epoch.
        """
        super().__init__(data_dir=data_dir, batch_size=batch_size, eval_batch_size=4)
        self.task = task
        self.repeats = repeats
        self.num_classes = 1 if task == "regression" else 2
        self.class_names = ["0"] if task == "regression" else ["0", "1"]

    def load_splits(self) -> dict[str, Split]:
        inputs = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
        targets = torch.tensor([0, 1, 1, 0])
        points = (inputs, targets)
        train = (inputs.repeat(self.repeats, 1), targets.repeat(self.repeats))
        return {"train": train, "val": points, "test": points}

    def train_dataloader(self) -> TensorLoader:
        return TensorLoader(self.splits["train"], batch_size=self.batch_size, shuffle=False)
