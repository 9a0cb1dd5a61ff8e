"""Activation statistics and histograms, whatever computes the activations.

Scalars ``act_mean/<layer>``, ``act_std/<layer>``, ``act_dead/<layer>`` and ``act_zero/<layer>``
(rectifiers), ``act_saturated/<layer>`` (sigmoid, tanh) and histograms ``activations/<layer>``.
``<layer>`` is an activation module's qualified name (``features.1``); for a model that
calls its activations as functions, a weight layer's (``fc1``): see :mod:`doctor.measures`.
"""

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities.types import STEP_OUTPUT
from torch import nn
from torch.utils.hooks import RemovableHandle

from netscope.callbacks.diagnostic import Diagnostic, is_epoch_end
from netscope.callbacks.logging_sinks import (
    DEFAULT_BINS,
    Histogram,
    histogram,
    log_histograms,
)
from netscope.core.compat import logger_step
from netscope.core.errors import UserError
from netscope.doctor.measures import Probe, dead_rows, output_statistics, probe_layers


class ActivationStatistics(Diagnostic):
    """Per activation layer: mean, spread, dead and saturated fractions, and a histogram.

    The layers are the model's activation modules (``models.activations.ACTIVATION_TYPES``);
    a model without any (activations called as functions) is measured at its weight layers'
    outputs, the pre-activations, and its dead units are read from the gradients: a unit
    whose incoming weights got no gradient from the whole batch (``act_dead``).
    Forward hooks are attached in ``on_train_batch_start`` of a logging step and removed in
    its ``on_train_batch_end``, so the steps in between (and validation) run without them.
    Statistics are over every output element of the batch (all units, all positions):

    - ``act_mean``, ``act_std``: Glorot & Bengio (2010, fig. 2 and 3) follow these per layer
      over training to see layers drift into saturation.
    - ``act_dead`` (rectifiers): share of units (channels of a conv output, features of a
      linear one) that are zero for every sample and position of the batch: units that
      pass no gradient back and no longer learn (a few percent in a healthy layer).
    - ``act_zero`` (rectifiers): share of exact zeros among all outputs, i.e. on the flat
      side of a ReLU (sparsity, about 0.5 in a healthy layer).
    - ``act_saturated`` (sigmoid, tanh): fraction of outputs within ``saturation_margin`` x
      (output range) of an asymptote. The default 0.05 gives sigmoid < 0.05 or > 0.95 and
      |tanh| > 0.9. Glorot & Bengio give no number: they read saturation off their
      histograms, as sigmoid outputs of the top hidden layer pinned at 0 (fig. 2) and tanh
      outputs piled at -1 and +1 (fig. 3, 4, top), while they count softsign's mass at
      |a| = 0.6-0.8 as not saturated (fig. 4, bottom). |tanh| > 0.9 lies beyond that
      softsign range; at both thresholds the derivative has fallen to 19% of its peak
      (tanh' = 1 - 0.9² = 0.19; sigmoid' = 0.95 · 0.05 = 0.0475 = 0.19 · 0.25).

    A module called several times in one forward pass reports its last call.
    """

    def __init__(self, every_n_steps: int | None = None, histogram_every_n_steps: int | None = None,
                 on_epoch_end: bool = True, saturation_margin: float = 0.05,
                 bins: int = DEFAULT_BINS) -> None:
        """Args:
            every_n_steps: log the scalars every this many optimizer steps; ``None`` (default):
                the trainer's ``log_every_n_steps``; ``0`` turns the scalars off.
            histogram_every_n_steps: log ``activations/<layer>`` histograms every this many
                steps; ``None`` (default): as ``every_n_steps``; ``0``: only at epoch ends.
            on_epoch_end: also log the histograms on the last training batch of every epoch.
            saturation_margin: distance from an asymptote, as a fraction of the output
                range, within which a sigmoid or tanh output counts as saturated.
            bins: bins per histogram.
        """
        if not 0.0 < saturation_margin < 0.5:
            raise UserError(f"saturation_margin must be in (0, 0.5), got {saturation_margin}")
        super().__init__(every_n_steps)
        self.histogram_every_n_steps = histogram_every_n_steps
        self.on_epoch_end = on_epoch_end
        self.saturation_margin = saturation_margin
        self.bins = bins
        self.histogram_every = 0
        self.probe: Probe = "activations"
        self.layers: dict[str, nn.Module] = {}
        self.handles: list[RemovableHandle] = []
        self.scalars: dict[str, torch.Tensor] = {}
        self.histograms: dict[str, Histogram | None] = {}
        self.measuring = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self.histogram_every = self.every
        if self.histogram_every_n_steps is not None:
            self.histogram_every = self.interval(trainer, self.histogram_every_n_steps,
                                                 "histogram_every_n_steps")
        self.probe, self.layers = probe_layers(self.target(pl_module))

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: object,
                             batch_idx: int) -> None:
        scalars = self.is_due(trainer)
        epoch_end = self.on_epoch_end and is_epoch_end(trainer)
        histograms = epoch_end or self.is_due(trainer, self.histogram_every)
        histograms = histograms and trainer.is_global_zero  # the one process that logs them
        self.measuring = scalars
        if scalars or histograms:
            for name, module in self.layers.items():
                hook = self._hook(name, scalars, histograms)
                self.handles.append(module.register_forward_hook(hook))

    def _hook(self, name: str, scalars: bool, histograms: bool):
        @torch.no_grad()
        def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            if not isinstance(output, torch.Tensor):
                return
            if scalars:
                self.scalars.update(output_statistics(name, module, output,
                                                      self.saturation_margin))
            if histograms:
                self.histograms[f"activations/{name}"] = histogram(output, self.bins)
        return hook

    @torch.no_grad()
    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if not self.measuring or self.probe != "pre_activations":
            return
        for name, layer in self.layers.items():
            if layer.weight.grad is not None:
                self.scalars[f"act_dead/{name}"] = dead_rows(layer.weight.grad)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: STEP_OUTPUT,
                           batch: object, batch_idx: int) -> None:
        self.remove_hooks()
        self.measuring = False
        if self.scalars:  # stacked: one transfer from the device for all layers
            values = torch.stack([v.float() for v in self.scalars.values()]).tolist()
            self.log_values(trainer, dict(zip(self.scalars, values)))
            self.scalars = {}
        if self.histograms:
            log_histograms(trainer, self.histograms, logger_step(trainer))
            self.histograms = {}

    def remove_hooks(self) -> None:
        """Detach every forward hook this callback attached."""
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def on_exception(self, trainer: Trainer, pl_module: LightningModule,
                     exception: BaseException) -> None:
        self.remove_hooks()

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.remove_hooks()
