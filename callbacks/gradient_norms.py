"""Gradient norms: ``grad_norm/<param>`` and ``grad_norm/total``."""

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import grad_norm

from callbacks.cadence import is_due, logger_step, resolve_interval
from callbacks.logging_sinks import log_scalars


class GradientNorms(Callback):
    """Log the L2 norm of every parameter's gradient, and of all of them as one vector.

    Vanishing gradients show as norms that shrink from the output layer towards the input;
    exploding ones as a total that grows by orders of magnitude. Computed in
    ``on_before_optimizer_step`` (after the backward pass and, under mixed precision, after
    unscaling; before the update) by Lightning's own ``grad_norm``; steps in between pay
    nothing.
    """

    def __init__(self, every_n_steps: int | None = None) -> None:
        """Args:
            every_n_steps: log every this many optimizer steps; ``None`` (default): the
                trainer's ``log_every_n_steps``; ``0`` turns it off.
        """
        self.every_n_steps = every_n_steps
        self.every = 0

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.every = resolve_interval(trainer, self.every_n_steps, "GradientNorms.every_n_steps")

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if not is_due(trainer, self.every):
            return
        # {"grad_2.0_norm/<param>": ..., "grad_2.0_norm_total": ...}
        norms = grad_norm(pl_module, norm_type=2)
        if not norms:
            return
        metrics = {}
        for key, value in norms.items():
            param = "total" if key.endswith("_total") else key.split("/", 1)[1]
            metrics[f"grad_norm/{param}"] = float(value)
        log_scalars(trainer, metrics, logger_step(trainer))
