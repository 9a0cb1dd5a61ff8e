"""Gradient norms: ``grad_norm/<param>`` and ``grad_norm/total``."""

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from netscope.callbacks.cadence import is_due, logger_step, resolve_interval
from netscope.callbacks.logging_sinks import log_scalars


class GradientNorms(Callback):
    """Log the L2 norm of every parameter's gradient, and of all of them as one vector.

    Vanishing gradients show as norms that shrink from the output layer towards the input;
    exploding ones as a total that grows by orders of magnitude. Computed in
    ``on_before_optimizer_step`` (after the backward pass and, under mixed precision, after
    unscaling; before the update), the same values as Lightning's ``grad_norm``; steps in
    between pay nothing.
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
        # Lightning's ``grad_norm`` computes the total with ``torch.tensor(list of norms)``,
        # which reads every norm to the host one by one (a wait for the device per
        # parameter); stacked here, the norms cross in one transfer per logging step.
        grads = {name: p.grad for name, p in pl_module.named_parameters() if p.grad is not None}
        if not grads:
            return
        norms = torch.stack([grad.detach().float().norm() for grad in grads.values()])
        values = torch.cat([norms, norms.norm().view(1)]).tolist()
        metrics = {f"grad_norm/{name}": value for name, value in zip([*grads, "total"], values)}
        log_scalars(trainer, metrics, logger_step(trainer))
