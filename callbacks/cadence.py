"""When a diagnostic runs: on the steps Lightning logs at, so their records share steps.

Lightning writes step metrics to the loggers on the training batches where
``trainer._logger_connector.should_update_logs`` holds: ``(step + 1) % log_every_n_steps == 0``,
with ``step`` the number of optimizer steps taken before the batch (the value stamped on
the record as ``step`` / ``trainer/global_step``), so with ``log_every_n_steps=50`` the
records read 49, 99, ... The diagnostics use the same rule, so that by default their
records share steps with ``train/loss``.
"""

from lightning.pytorch import Trainer

from netscope.core.errors import UserError


def logger_step(trainer: Trainer) -> int:
    """The step Lightning stamps on the metrics of the current training batch.

    It is constant through all hooks of one batch, while ``trainer.global_step`` moves on
    inside the optimizer step; read by hand because Lightning keeps it on its fit loop.
    """
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def resolve_interval(trainer: Trainer, every_n_steps: int | None, name: str) -> int:
    """``every_n_steps``, or the trainer's ``log_every_n_steps`` when it is ``None``.

    ``0`` turns the diagnostic off; ``name`` (``"GradientNorms.every_n_steps"``) is what an
    error message calls the setting.
    """
    every = trainer.log_every_n_steps if every_n_steps is None else every_n_steps
    if every < 0:
        raise UserError(f"{name} must be 0 (off) or a positive number of steps, got {every}.")
    return every


def is_due(trainer: Trainer, every: int) -> bool:
    """Whether the current training batch is one to run an ``every``-step diagnostic on.

    ``fast_dev_run`` logs every step (as Lightning does), so a quick check sees everything.
    """
    if every <= 0 or trainer.sanity_checking:
        return False
    if trainer.fast_dev_run:
        return True
    return (logger_step(trainer) + 1) % every == 0


def is_epoch_end(trainer: Trainer) -> bool:
    """Whether the current training batch is the last of its epoch (not in a sanity check)."""
    return trainer.is_last_batch and not trainer.sanity_checking
