"""Lookahead of the weights: every few steps, pull the weights back toward a slow average.

Written here because no well-kept library does this for any optimizer a config chooses:
PyTorch has no Lookahead, and Lightning's ``WeightAveraging``/``StochasticWeightAveraging``
keep an average *beside* the model without feeding it back into training.
"""

import math
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.types import STEP_OUTPUT

from netscope.core.errors import UserError


class Lookahead(Callback):
    """Lookahead with a growing pull (airbench's scheme; Zhang et al. 2019, "Lookahead
    Optimizer: k steps forward, 1 step back").

    Every ``every_n_steps`` optimizer steps, the slow copy moves toward the trained weights,
    ``slow += (1 - decay) * (weights - slow)``, and the weights are set to it. ``decay``
    grows from 0 to ``max_decay`` as ``(step / total_steps) ** power``: early in training
    the weights run free, late in training each step moves the model only a little, which
    averages out the noise of the last, small-learning-rate steps. After the last step the
    model keeps the slow weights: what is validated, tested and saved at the end.

    Floating-point buffers (BatchNorm running statistics) are averaged with the weights.
    The slow copy is part of the callback's checkpoint state, so a resumed fit goes on.
    """

    def __init__(self, every_n_steps: int = 5, max_decay: float = 0.95 ** 5,
                 power: float = 3.0, every_n_samples: int | None = None) -> None:
        """Args:
            every_n_steps: optimizer steps between updates (Lookahead's ``k``).
            every_n_samples: the interval in training samples instead (it replaces
                ``every_n_steps``): ``round(every_n_samples / samples per step)`` steps, at
                least 1, so a batch-size override keeps the same pull per image seen
                (airbench: every 5 steps of 1024 images = ``every_n_samples: 5120``).
            max_decay: the decay at the end of training: the share of the slow copy kept at
                each update (airbench: ``0.95 ** 5``, about 0.77).
            power: the shape of the ramp from 0 to ``max_decay`` (3: it stays small for most
                of training and grows in the last third).
        """
        if every_n_steps < 1 or not 0.0 <= max_decay < 1.0 or power < 0 or (
                every_n_samples is not None and every_n_samples < 1):
            raise UserError("Lookahead needs every_n_steps >= 1 (or every_n_samples >= 1), "
                            "0 <= max_decay < 1 and power >= 0")
        self.every_n_steps = every_n_steps
        self.every_n_samples = every_n_samples
        self.interval = every_n_steps
        self.max_decay = max_decay
        self.power = power
        self.slow: dict[str, torch.Tensor] | None = None
        self.total_steps = 0
        self._restored = False  # set when a checkpoint brings a slow copy to go on from

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        total = trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise UserError("Lookahead grows its pull over the whole fit, so it needs to know "
                            "its length: set trainer.max_epochs or trainer.max_steps.")
        self.total_steps = int(total)
        self.interval = self.every_n_steps
        if self.every_n_samples is not None:
            self.interval = max(1, round(self.every_n_samples / samples_per_step(trainer)))
        model = self._averaged(pl_module)
        if not self._restored or self.slow is None or self.slow.keys() != model.keys():
            self.slow = {name: value.detach().clone() for name, value in model.items()}
        else:  # a resumed fit: go on from the checkpoint's slow copy, on the model's device
            self.slow = {name: value.to(model[name].device) for name, value in self.slow.items()}
        self._restored = False

    def decay(self, step: int) -> float:
        """The share of the slow copy kept at an update after optimizer step ``step``."""
        progress = min(step / max(self.total_steps, 1), 1.0)
        return self.max_decay * progress ** self.power

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule,
                           outputs: STEP_OUTPUT, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step >= self.total_steps:
            self.update(pl_module, decay=1.0)  # the end: the model takes the slow weights
        elif step % self.interval == 0:
            self.update(pl_module, self.decay(step))

    @torch.no_grad()
    def update(self, pl_module: LightningModule, decay: float) -> None:
        """Move the slow copy toward the model's weights, then copy it into the model."""
        if self.slow is None:
            return
        for name, value in self._averaged(pl_module).items():
            slow = self.slow[name]
            slow.lerp_(value, 1.0 - decay)  # same dtype: the slow copy was cloned from it
            value.copy_(slow)

    @staticmethod
    def _averaged(pl_module: LightningModule) -> dict[str, torch.Tensor]:
        """Parameters and floating-point buffers (not counters such as
        ``num_batches_tracked``), by name."""
        return {name: value for name, value in pl_module.state_dict(keep_vars=True).items()
                if value.is_floating_point()}

    def state_dict(self) -> dict[str, Any]:
        return {"slow": self.slow}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.slow = state_dict.get("slow")
        self._restored = self.slow is not None


def samples_per_step(trainer: Trainer) -> int:
    """Training samples behind one optimizer step: batch size x accumulation x processes."""
    batch_size = getattr(trainer.datamodule, "batch_size", None)
    if not batch_size:
        raise UserError("Lookahead.every_n_samples needs a datamodule with a batch_size; "
                        "use every_n_steps instead.")
    return int(batch_size) * trainer.accumulate_grad_batches * trainer.world_size
