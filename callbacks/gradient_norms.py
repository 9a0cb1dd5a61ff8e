"""Gradient norms: ``grad_norm/<param>`` and ``grad_norm/total``."""

import torch
from lightning.pytorch import LightningModule, Trainer

from netscope.callbacks.diagnostic import Diagnostic


class GradientNorms(Diagnostic):
    """Log the L2 norm of every parameter's gradient, and of all of them as one vector.

    Vanishing gradients show as norms that shrink from the output layer towards the input;
    exploding ones as a total that grows by orders of magnitude. Computed in
    ``on_before_optimizer_step`` (after the backward pass and, under mixed precision, after
    unscaling; before the update), the same values as Lightning's ``grad_norm``; steps in
    between pay nothing.
    """

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if not self.is_due(trainer):
            return
        # Lightning's ``grad_norm`` computes the total with ``torch.tensor(list of norms)``,
        # which reads every norm to the host one by one (a wait for the device per
        # parameter); stacked here, the norms cross in one transfer per logging step.
        grads = {name: p.grad for name, p in self.target(pl_module).named_parameters()
                 if p.grad is not None}
        if not grads:
            return
        norms = torch.stack([grad.detach().float().norm() for grad in grads.values()])
        values = torch.cat([norms, norms.norm().view(1)]).tolist()
        self.log_values(trainer, {f"grad_norm/{name}": value
                           for name, value in zip([*grads, "total"], values)})
