"""End-of-fit figures of the diagnostics, saved in the run directory and sent to the loggers."""

from pathlib import Path
from typing import TypeVar

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info

from callbacks.activations import ActivationStatistics
from callbacks.cadence import logger_step
from callbacks.gradient_norms import GradientNorms
from callbacks.logging_sinks import log_figure
from figures.style import save
from figures.training import activation_figure, gradient_figure


C = TypeVar("C", bound=Callback)


def find(trainer: Trainer, kind: type[C]) -> C | None:
    """The trainer's first callback of type ``kind``."""
    return next((c for c in trainer.callbacks if isinstance(c, kind)), None)


class TrainingFigures(Callback):
    """At the end of fit (also of a fit stopped early), draw from what the other diagnostics
    logged:

    - ``activations.png``: per hidden layer, activation mean and spread against steps (the
      Glorot & Bengio 2010 figure), with saturated/dead fractions; needs
      :class:`~callbacks.ActivationStatistics`.
    - ``grad_norms.png``: gradient norm per weight layer (Linear, Conv) against steps; needs
      :class:`~callbacks.GradientNorms`.

    Files go to the run directory (``trainer.default_root_dir``); W&B and TensorBoard also
    receive them as images (``figures/activations``, ``figures/grad_norms``).
    """

    def __init__(self, dpi: int = 130) -> None:
        """Args:
            dpi: resolution of the PNG files.
        """
        self.dpi = dpi
        self.paths: list[Path] = []

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        activations = find(trainer, ActivationStatistics)
        gradients = find(trainer, GradientNorms)
        figures = {
            "activations": (activation_figure(activations.history, activations.layer_types())
                            if activations else None),
            "grad_norms": (gradient_figure(gradients.history, gradients.weight_layers or None)
                           if gradients else None),
        }
        step = logger_step(trainer)
        for name, figure in figures.items():
            if figure is None:
                continue
            path = save(figure, Path(trainer.default_root_dir) / f"{name}.png", self.dpi)
            self.paths.append(path)
            log_figure(trainer, f"figures/{name}", path, step)
        if self.paths:
            rank_zero_info("Figures: " + ", ".join(str(p) for p in self.paths))
