"""Histograms of every parameter and its gradient: ``weights/<param>`` and ``grads/<param>``."""

import torch
from lightning.pytorch import LightningModule, Trainer

from netscope.callbacks.diagnostic import Diagnostic, is_epoch_end
from netscope.callbacks.logging_sinks import DEFAULT_BINS, log_histograms
from netscope.core.compat import logger_step


class ParameterHistograms(Diagnostic):
    """Log the distribution of each parameter's values and of its gradient.

    Taken in ``on_before_optimizer_step``, where the gradient of the step is complete and
    the weights are those it was computed with; every ``every_n_steps`` steps and on the
    last training batch of each epoch (the gradients are gone by ``on_train_epoch_end``:
    validation clears them). Histograms go to the run directory's ``histograms.jsonl``
    (whatever the loggers), W&B and TensorBoard (see :mod:`callbacks.logging_sinks`); the
    figures ``histograms_weights.png`` and ``histograms_grads.png`` are drawn from the file.
    """

    def __init__(self, every_n_steps: int | None = None, on_epoch_end: bool = True,
                 bins: int = DEFAULT_BINS) -> None:
        """Args:
            every_n_steps: log every this many optimizer steps; ``None`` (default): the
                trainer's ``log_every_n_steps``; ``0``: only at the end of epochs.
            on_epoch_end: also log on the last training batch of every epoch.
            bins: bins per histogram (W&B takes at most 512).
        """
        super().__init__(every_n_steps)
        self.on_epoch_end = on_epoch_end
        self.bins = bins

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        epoch_end = self.on_epoch_end and is_epoch_end(trainer)
        if not (epoch_end or self.is_due(trainer)):
            return
        tensors: dict[str, torch.Tensor] = {}
        for name, parameter in self.target(pl_module).named_parameters():
            if not parameter.requires_grad:
                continue
            tensors[f"weights/{name}"] = parameter
            if parameter.grad is not None:
                tensors[f"grads/{name}"] = parameter.grad
        log_histograms(trainer, tensors, logger_step(trainer), self.bins)
