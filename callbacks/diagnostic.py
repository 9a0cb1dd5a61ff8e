"""The base of every diagnostic: :class:`Diagnostic` owns *when*, a subclass says *what*.

A diagnostic measures on the steps Lightning logs at, so that its records share steps with
``train/loss``: Lightning writes step metrics on the training batches where
``(step + 1) % log_every_n_steps == 0``, with ``step`` the number of optimizer steps taken
before the batch (the value stamped on the record as ``step`` / ``trainer/global_step``);
with ``log_every_n_steps=50`` the records read 49, 99, ... (``fast_dev_run`` logs every step,
as Lightning does, so a quick check sees everything).
"""

from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn

from netscope.callbacks.board import Board
from netscope.callbacks.logging_sinks import log_scalars
from netscope.core.compat import logger_step
from netscope.core.errors import UserError
from netscope.models.wrapped import inspected

__all__ = ["Diagnostic", "inspected", "is_epoch_end", "logger_step", "resolve_interval"]


def resolve_interval(trainer: Trainer, every_n_steps: int | None, name: str) -> int:
    """``every_n_steps``, or the trainer's ``log_every_n_steps`` when it is ``None``.

    ``0`` turns the measurement off; ``name`` (``"GradientNorms.every_n_steps"``) is what an
    error message calls the setting.
    """
    every = trainer.log_every_n_steps if every_n_steps is None else every_n_steps
    if every < 0:
        raise UserError(f"{name} must be 0 (off) or a positive number of steps, got {every}.")
    return every


def is_due(trainer: Trainer, every: int) -> bool:
    """Whether the current training batch is one to run an ``every``-step measurement on."""
    if every <= 0 or trainer.sanity_checking:
        return False
    if trainer.fast_dev_run:
        return True
    return (logger_step(trainer) + 1) % every == 0


def is_epoch_end(trainer: Trainer) -> bool:
    """Whether the current training batch is the last of its epoch (not in a sanity check)."""
    return trainer.is_last_batch and not trainer.sanity_checking


class Diagnostic(Callback):
    """A callback that measures every ``every_n_steps`` optimizer steps and logs what it saw.

    Subclasses call :meth:`is_due` in the hook where their quantity exists and
    :meth:`log_values` with the numbers (not ``log``: Lightning binds the module's own
    ``log`` onto every callback); the base resolves the cadence when a stage is set up, logs
    to every logger and to the trainer's :class:`~callbacks.board.Board`, and names the
    module measured (:func:`inspected`: the user's network inside netscope's wrapper).
    """

    def __init__(self, every_n_steps: int | None = None) -> None:
        """Args:
            every_n_steps: measure every this many optimizer steps; ``None`` (default): the
                trainer's ``log_every_n_steps``; ``0`` turns it off.
        """
        self.every_n_steps = every_n_steps
        self.every = 0
        self.board: Board | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.every = self.interval(trainer, self.every_n_steps, "every_n_steps")
        self.board = Board.of(trainer)

    def interval(self, trainer: Trainer, every_n_steps: int | None, setting: str) -> int:
        """A cadence setting of this diagnostic, resolved (see :func:`resolve_interval`)."""
        return resolve_interval(trainer, every_n_steps, f"{type(self).__name__}.{setting}")

    def is_due(self, trainer: Trainer, every: int | None = None) -> bool:
        """Whether to measure on the current training batch (at ``every``, default the
        diagnostic's own cadence)."""
        return is_due(trainer, self.every if every is None else every)

    def log_values(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        """Log scalars at the current batch's step to every logger and the board."""
        if not metrics:
            return
        step = logger_step(trainer)
        log_scalars(trainer, metrics, step)
        if self.board is not None:
            self.board.record(step, metrics)

    @staticmethod
    def target(pl_module: LightningModule) -> nn.Module:
        """The module whose parameters and layers are measured and named."""
        return inspected(pl_module)
