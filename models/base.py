"""The LightningModule every netscope model shares.

A concrete model only builds its layers (``configure_network``) and says how to run them
(``forward``); losses, metrics, logging and initialization live here, so any model trains
on any datamodule. What the datamodule knows (``num_classes``, ``input_shape``, ``task``,
``class_names``) arrives by argument linking in the CLI; nobody types it twice.

The optimizer and LR scheduler are not chosen here: any ``torch.optim`` class comes from the
config or the command line (``--optimizer``, ``--lr_scheduler``), and is built when the fit
starts, with schedule lengths taken from the fit (:mod:`models.optimization`;
``lr_scheduler_interval: step`` makes the scheduler advance every optimizer step).

Speed options any model can use: ``channels_last`` memory format, test-time augmentation
(``tta``), and a data-dependent ``init`` (``whitening``) applied when fit starts.
"""

from abc import abstractmethod
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule
from torch import nn
from torchmetrics import Accuracy, MeanAbsoluteError, MeanMetric, MeanSquaredError, MetricCollection

from netscope.core.errors import UserError
from netscope.core.task import Task, class_names as task_class_names
from netscope.models.activations import ActivationName, make_activation
from netscope.models.initialization import (
    DATA_DEPENDENT_INITS,
    WHITENING_SAMPLES,
    InitName,
    apply_init,
    whitening_init,
)
from netscope.models.losses import LossName, make_loss
from netscope.models.tta import TTAMode, tta_outputs
from netscope.optim.schedules import build_optimizers, check_restored_schedule

Stage = Literal["train", "val", "test", "predict"]


class BaseModel(LightningModule):
    """Shared training logic: losses, torchmetrics, logging, initialization."""

    #: Init arguments kept out of the hyper-parameters (modules: the state dict holds them).
    HPARAMS_IGNORE: tuple[str, ...] = ()

    def __init__(
        self,
        num_classes: int = 10,
        input_shape: tuple[int, ...] = (1, 28, 28),
        task: Task = "classification",
        class_names: list[str] | None = None,
        activation: ActivationName = "relu",
        negative_slope: float = 0.01,
        init: InitName = "default",
        init_scale: float | None = None,
        label_smoothing: float = 0.0,
        loss: LossName = "default",
        tta: TTAMode = "none",
        tta_on_val: bool = False,
        channels_last: bool = False,
        lr_scheduler_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        """Build the network, initialize it, and set up losses and metrics.

        Args:
            num_classes: classes to predict (for ``regression``: number of targets). Linked
                from the datamodule.
            input_shape: shape of one input, e.g. ``(3, 32, 32)``. Linked from the datamodule.
            task: what the outputs mean (see :data:`Task`). Linked from the datamodule.
            class_names: names of the classes, for reports. Linked from the datamodule.
            activation: non-linearity of the hidden layers.
            negative_slope: slope of ``leaky_relu`` for negative inputs.
            init: weight initialization of every Linear/Conv layer (``default``: PyTorch's;
                ``whitening``: the first layer whitens its inputs, computed from training
                images when fit starts, the others keep PyTorch's initialization).
            init_scale: std for ``normal``, bound for ``uniform``, gain for the others.
            label_smoothing: label smoothing of classification targets (of the
                cross-entropy, or of the one-hot targets of ``loss: mse``).
            loss: ``default``: the task's usual loss (cross-entropy for classification);
                ``mse``: the squared error between the logits and the one-hot targets, as
                in Cohen et al. 2021's edge-of-stability runs (see :mod:`models.losses`).
            tta: test-time augmentation of image inputs at test and predict time: ``flip``
                averages the outputs on each image and its mirror, ``flip_translate`` adds
                the pair shifted by one pixel (six views, six times the evaluation cost).
            tta_on_val: apply ``tta`` to the validation passes as well.
            channels_last: keep 4-d weights and inputs in channels-last memory format
                (faster convolutions on CPUs and tensor cores).
            lr_scheduler_interval: advance the LR scheduler every ``epoch`` (Lightning's
                default) or every optimizer ``step`` (for per-step schedules such as
                ``OneCycleLR``); schedule lengths count in this unit.
        """
        super().__init__()
        # The CLI sends the whole resolved config to the logger; logging these again would
        # only duplicate part of it. They are still stored in checkpoints.
        self.save_hyperparameters(logger=False, ignore=list(self.HPARAMS_IGNORE))
        self.num_classes = num_classes
        self.input_shape = tuple(input_shape)
        self.task = task
        self.class_names = task_class_names(class_names, num_classes)
        if tta != "none" and len(self.input_shape) < 2:
            raise UserError(f"Test-time augmentation (tta={tta}) mirrors and shifts images, but "
                            f"this model's inputs have shape {self.input_shape}. Use tta none.")
        self.configure_network()
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.initialize_weights()
        self.configure_losses()
        self.configure_metrics()

    # ----------------------------------------------------------------- hooks to fill in
    @abstractmethod
    def configure_network(self) -> None:
        """Create the layers as attributes of ``self`` (names become metric names)."""

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a batch of inputs to outputs of width :attr:`output_dim`."""

    # ------------------------------------------------------------------- shared pieces
    @property
    def output_dim(self) -> int:
        """Width of the last layer: one logit for ``binary``, else one per class/target."""
        return 1 if self.task == "binary" else self.num_classes

    def make_activation(self) -> nn.Module:
        """A fresh instance of the configured activation, for building layers."""
        return make_activation(self.hparams.activation, self.hparams.negative_slope)

    def init_target(self) -> nn.Module:
        """The part of the model the ``init`` scheme applies to (all of it by default)."""
        return self

    def initialize_weights(self) -> None:
        """Apply the configured ``init`` to :meth:`init_target`."""
        apply_init(
            self.init_target(),
            self.hparams.init,
            activation=self.hparams.activation,
            scale=self.hparams.init_scale,
            negative_slope=self.hparams.negative_slope,
        )

    def setup(self, stage: str) -> None:
        """Apply a data-dependent ``init`` once, when fit starts from scratch.

        Lightning calls this after the datamodule's ``setup`` (so training data is loaded)
        and before restoring a checkpoint (which then overwrites it, as it should) and
        before the model is wrapped for DDP (which copies rank 0's weights to all ranks).
        """
        if stage != "fit" or self.hparams.init not in DATA_DEPENDENT_INITS:
            return
        if getattr(self, "_data_init_done", False):
            return  # a second fit continues training; it does not re-initialize
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        if not hasattr(datamodule, "sample_inputs"):
            raise UserError(f"init {self.hparams.init} computes the first layer from training "
                            f"images; it needs a netscope datamodule (--data ...).")
        try:
            whitening_init(self.init_target(), datamodule.sample_inputs(WHITENING_SAMPLES))
        except ValueError as error:
            raise UserError(f"init {self.hparams.init}: {error}. Change the first layer or "
                            f"choose another init.") from error
        self._data_init_done = True

    def choose_optimizers(self, optimizer: Any, lr_scheduler: Any = None) -> None:
        """Record the optimizer and LR scheduler a config chose (``class_path`` and
        ``init_args``); they are built when the fit starts (see :meth:`configure_optimizers`).

        The CLI calls this with ``--optimizer`` and ``--lr_scheduler``; a model used from
        Python may call it too. Without a choice the model trains with SGD at lr 0.01.
        """
        self.optimizer_choice, self.lr_scheduler_choice = optimizer, lr_scheduler

    def configure_optimizers(self) -> Any:
        """The chosen optimizer and schedule, with schedule lengths left out of the config
        taken from this fit (see :mod:`models.optimization`)."""
        return build_optimizers(self.parameter_groups(), getattr(self, "optimizer_choice", None),
                                getattr(self, "lr_scheduler_choice", None), self.trainer,
                                self.hparams.lr_scheduler_interval)

    def parameter_groups(self) -> Any:
        """What the optimizer is built on: the parameters, or parameter groups where a model
        gives some of them their own schedule (``ConvNet``'s stem bias)."""
        return self.parameters()

    def on_train_start(self) -> None:
        """A resumed schedule must still fit the run (its state comes from the checkpoint)."""
        check_restored_schedule(self.trainer, self.hparams.lr_scheduler_interval,
                                getattr(self, "lr_scheduler_choice", None))

    def configure_losses(self) -> None:
        """Choose the loss for the task and the ``loss`` option (:func:`models.losses.make_loss`)."""
        self.loss_fn = make_loss(self.task, self.hparams.get("loss", "default"),
                                 self.hparams.label_smoothing)

    def configure_metrics(self) -> None:
        """torchmetrics collections per stage: accuracy, or MSE and MAE for regression."""
        # validate_args=False: torchmetrics' input checks (torch.unique, comparisons read on
        # the host) synchronize with the device on every training step; the loss already
        # rejects targets out of range.
        match self.task:
            case "classification":
                metrics = MetricCollection({"acc": Accuracy("multiclass", num_classes=self.num_classes,
                                                            validate_args=False)})
            case "binary":
                metrics = MetricCollection({"acc": Accuracy("binary", validate_args=False)})
            case "regression":
                metrics = MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()})
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        # The loss's epoch mean as a torchmetrics state too: under DDP it is summed across
        # ranks with its sample count, so ranks with more samples weigh more. (Lightning's
        # own sync_dist mean divides by rank 0's count alone: wrong on uneven shards.)
        self.train_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()

    def outputs_for_loss(self, outputs: torch.Tensor) -> torch.Tensor:
        """Outputs in the shape the loss and metrics expect for the task."""
        if self.task == "binary" or (self.task == "regression" and self.num_classes == 1):
            return outputs.squeeze(-1)
        return outputs

    def targets_for_loss(self, targets: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        """Targets as the loss expects them (floats for BCE and MSE)."""
        return targets if self.task == "classification" else targets.to(outputs.dtype)

    def prepare_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """Inputs in the memory format the network runs fastest with."""
        if self.hparams.channels_last and inputs.dim() == 4:
            return inputs.contiguous(memory_format=torch.channels_last)
        return inputs

    def evaluate(self, inputs: torch.Tensor, stage: Stage) -> torch.Tensor:
        """The network's outputs for ``stage``: with test-time augmentation where configured."""
        inputs = self.prepare_inputs(inputs)
        tta = self.hparams.tta
        if stage == "train" or (stage == "val" and not self.hparams.tta_on_val):
            tta = "none"
        return tta_outputs(self, inputs, tta)

    def shared_step(self, batch: Any, stage: Stage) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward, loss and metrics for one batch of ``stage``; returns loss and outputs."""
        inputs, targets = batch[0], batch[1]
        outputs = self.outputs_for_loss(self.evaluate(inputs, stage))
        loss = self.loss_fn(outputs, self.targets_for_loss(targets, outputs))
        metrics = getattr(self, f"{stage}_metrics")
        metrics.update(outputs.detach().float(), targets)
        on_step = stage == "train"
        mean_loss = getattr(self, f"{stage}_loss")
        mean_loss(loss.detach(), len(targets))  # forward: this batch's value, and accumulate
        self.log(f"{stage}/loss", mean_loss, on_step=on_step, on_epoch=True, prog_bar=True)
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=True)
        return loss, outputs

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.shared_step(batch, "train")[0]

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        """Returns the outputs (shaped as for the loss) and targets, for test-time reports."""
        outputs = self.shared_step(batch, "test")[1]
        return {"outputs": outputs.detach(), "targets": batch[1]}

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Class probabilities (classification, binary) or raw outputs (regression)."""
        inputs = batch[0] if isinstance(batch, (list, tuple)) else batch
        outputs = self.evaluate(inputs, "predict")
        match self.task:
            case "classification":
                return outputs.softmax(-1)
            case "binary":
                return outputs.sigmoid()
            case _:
                return outputs
