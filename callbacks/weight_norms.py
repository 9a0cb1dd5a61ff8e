"""Weight norms and update ratios: ``weight_norm/<param>`` and ``update_ratio/<param>``."""

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities.types import STEP_OUTPUT

from netscope.callbacks.diagnostic import Diagnostic
from netscope.doctor.measures import update_ratio


class WeightNorms(Diagnostic):
    """Log each parameter's L2 norm and how far one optimizer step moved it.

    ``update_ratio/<param>`` = ‖θ_after − θ_before‖ / ‖θ_before‖ over one optimizer
    step: around 1e-3 is the classic healthy value; far below, the layer barely learns;
    near 1, every step rewrites it. A parameter whose norm was exactly zero before the step
    gets 0 when it did not move and ``inf`` when it did (the ratio has no finite value then).

    On a logging step the parameters are copied in ``on_before_optimizer_step`` and compared
    in ``on_train_batch_end``; other steps pay nothing.
    """

    def __init__(self, every_n_steps: int | None = None) -> None:
        super().__init__(every_n_steps)
        self.before: dict[str, torch.Tensor] = {}

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if self.is_due(trainer):
            self.before = {name: p.detach().clone()
                           for name, p in self.target(pl_module).named_parameters()
                           if p.requires_grad}

    @torch.no_grad()
    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule,
                           outputs: STEP_OUTPUT, batch: object, batch_idx: int) -> None:
        if not self.before:
            return
        parameters = dict(self.target(pl_module).named_parameters())
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
            metrics[f"update_ratio/{name}"] = update_ratio(before, moved)
        self.log_values(trainer, metrics)
