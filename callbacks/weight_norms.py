"""Weight norms and update ratios: ``weight_norm/<param>`` and ``update_ratio/<param>``."""

import math

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.types import STEP_OUTPUT

from netscope.callbacks.cadence import is_due, logger_step, resolve_interval
from netscope.callbacks.logging_sinks import log_scalars


class WeightNorms(Callback):
    """Log each parameter's L2 norm and how far one optimizer step moved it.

    ``update_ratio/<param>`` = ‖θ_after − θ_before‖ / ‖θ_before‖ over one optimizer
    step: around 1e-3 is the classic healthy value; far below, the layer barely learns;
    near 1, every step rewrites it. A parameter whose norm was exactly zero before the step gets
    0 when it did not move and ``inf`` when it did (the ratio has no finite value then).

    On a logging step the parameters are copied in ``on_before_optimizer_step`` and compared
    in ``on_train_batch_end``; other steps pay nothing.
    """

    def __init__(self, every_n_steps: int | None = None) -> None:
        """Args:
            every_n_steps: log every this many optimizer steps; ``None`` (default): the
                trainer's ``log_every_n_steps``; ``0`` turns it off.
        """
        self.every_n_steps = every_n_steps
        self.every = 0
        self.before: dict[str, torch.Tensor] = {}

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.every = resolve_interval(trainer, self.every_n_steps, "WeightNorms.every_n_steps")

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if is_due(trainer, self.every):
            self.before = {name: p.detach().clone() for name, p in pl_module.named_parameters()
                           if p.requires_grad}

    @torch.no_grad()
    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule,
                           outputs: STEP_OUTPUT, batch: object, batch_idx: int) -> None:
        if not self.before:
            return
        parameters = dict(pl_module.named_parameters())
        names = [name for name in self.before if name in parameters]
        # Three norms per parameter, stacked so they cross to the CPU in one transfer.
        norms = torch.stack([
            torch.stack([self.before[n].float().norm(),
                         (parameters[n] - self.before[n]).float().norm(),
                         parameters[n].float().norm()])
            for n in names
        ])
        self.before = {}
        metrics: dict[str, float] = {}
        for name, (before, moved, after) in zip(names, norms.tolist()):
            metrics[f"weight_norm/{name}"] = after
            if before > 0:
                metrics[f"update_ratio/{name}"] = moved / before
            else:  # no finite ratio from zero; 0 says "did not move"
                metrics[f"update_ratio/{name}"] = math.inf if moved > 0 else 0.0
        log_scalars(trainer, metrics, logger_step(trainer))
