"""Any ``torch.nn.Module`` trained with netscope's losses, metrics and optimizers.

``--model mynet.PlainNet`` (a plain ``nn.Module`` whose ``forward`` maps a batch of inputs
to outputs) is wrapped in :class:`Supervised`: the user's network does the forward pass,
netscope does the rest, as for its own models. The explicit form names the wrapper and the
network, for the wrapper's own options::

    model:
      class_path: Supervised
      init_args:
        network: {class_path: mynet.PlainNet, init_args: {hidden: 64}}
        label_smoothing: 0.1

The diagnostics measure and name the network's own layers and parameters (``fc1.weight``,
not ``network.fc1.weight``): see :func:`inspected`.
"""

import os
import traceback
from typing import Any, Literal

import torch
from torch import nn

from netscope.core.errors import UserError, first_line
from netscope.core.task import Task
from netscope.models.base import BaseModel
from netscope.models.initialization import InitName
from netscope.models.losses import LossName


class Supervised(BaseModel):
    """A classifier or regressor around any network: netscope's losses, metrics, logging,
    optimizers and schedules, the network's own layers and forward pass."""

    HPARAMS_IGNORE = ("network",)  # a module is saved in the state dict, not as a hyper-parameter

    def __init__(
        self,
        network: nn.Module,
        num_classes: int | None = None,
        input_shape: tuple[int, ...] | None = None,
        task: Task = "classification",
        class_names: list[str] | None = None,
        init: InitName = "default",
        init_scale: float | None = None,
        label_smoothing: float = 0.0,
        loss: LossName = "default",
        lr_scheduler_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        """Wrap ``network`` with netscope's losses, metrics and optimizers.

        Args:
            network: the ``nn.Module`` to train; its ``forward`` takes a batch of inputs and
                returns one row of outputs per input (logits for classification).
            num_classes: classes to predict (regression: targets). Linked from the
                datamodule; without one, taken from the width of the network's outputs on
                the first batch.
            input_shape: shape of one input. Linked from the datamodule.
            task: what the outputs mean (``classification``, ``binary``, ``regression``).
                Linked from the datamodule.
            class_names: names of the classes, for reports. Linked from the datamodule.
            init: re-initialize the network's Linear and Conv weights (``default``: keep
                the network's own initialization).
            init_scale: std for ``normal``, bound for ``uniform``, gain for the others.
            label_smoothing: label smoothing of classification targets.
            loss: ``default`` (the task's usual loss) or ``mse`` (squared error between
                the outputs and the one-hot targets; see :mod:`models.losses`).
            lr_scheduler_interval: advance the LR scheduler every ``epoch`` or every
                optimizer ``step``.
        """
        if not isinstance(network, nn.Module):
            raise UserError(f"Supervised needs a torch.nn.Module as its network, got "
                            f"{type(network).__name__}.")
        # BaseModel builds the layers in configure_network, called from its __init__, before
        # an nn.Module attribute can be set here; the network waits in the instance dict.
        self.__dict__["_network_to_wrap"] = network
        self.__dict__["network_class_path"] = f"{type(network).__module__}.{type(network).__qualname__}"
        super().__init__(num_classes=num_classes or 0, input_shape=tuple(input_shape or ()),
                         task=task, class_names=class_names, init=init, init_scale=init_scale,
                         label_smoothing=label_smoothing, loss=loss,
                         lr_scheduler_interval=lr_scheduler_interval)

    def configure_network(self) -> None:
        self.network = self.__dict__.pop("_network_to_wrap")

    def configure_metrics(self) -> None:
        if self.num_classes or self.task != "classification":
            super().configure_metrics()  # else: once the first outputs say how many classes

    def forward(self, x: torch.Tensor) -> Any:
        try:
            return self.network(x)
        except (RuntimeError, ValueError, TypeError, IndexError) as error:
            # the user's own forward on the data's inputs: usually a shape the data does not
            # have; said in one paragraph, with where in the user's code it was raised
            raise UserError(
                f"{self.network_class_path}.forward failed on a batch of inputs of shape "
                f"{tuple(x.shape)}{where(error)}: {type(error).__name__}: {first_line(error)}. "
                f"The data gives inputs of shape {tuple(self.input_shape) or 'unknown'} (a "
                f"network argument named input_shape or in_channels is filled with it).") from error

    def outputs_for_loss(self, outputs: torch.Tensor) -> torch.Tensor:
        if not isinstance(outputs, torch.Tensor):
            raise UserError(f"{self.network_class_path}.forward returned a "
                            f"{type(outputs).__name__}; netscope trains a network whose forward "
                            f"returns one tensor of outputs per batch. Return the logits (or "
                            f"write a LightningModule with its own training_step).")
        if not self.num_classes and self.task == "classification":
            self.num_classes = int(outputs.shape[-1])  # typed once: the network's last layer
            self.class_names = [str(i) for i in range(self.num_classes)]
            super().configure_metrics()
            self.to(outputs.device)
        width = outputs.shape[-1] if outputs.dim() > 1 else 1
        if width != self.output_dim:
            raise UserError(
                f"{self.network_class_path} outputs {width} values per input, but the "
                f"{self.task} task needs {self.output_dim} (num_classes {self.num_classes}). Make "
                f"its last layer {self.output_dim} wide, or give the network a num_classes "
                f"parameter: netscope fills a parameter of that name from the datamodule.")
        return super().outputs_for_loss(outputs)


def where(error: BaseException) -> str:
    """`` (at mynet.py:17, in forward)``: the innermost frame of the traceback outside torch."""
    frames = traceback.extract_tb(error.__traceback__)
    mine = [f for f in frames if "/torch/" not in f.filename and "/netscope/" not in f.filename
            and not f.filename.endswith("wrapped.py")]
    if not mine:
        return ""
    frame = mine[-1]
    return f" (at {os.path.basename(frame.filename)}:{frame.lineno}, in {frame.name})"


def inspected(module: nn.Module) -> nn.Module:
    """The module the diagnostics measure and name: the user's network inside
    :class:`Supervised`, else the module itself."""
    return module.network if isinstance(module, Supervised) else module
