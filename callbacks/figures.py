"""End-of-fit figures, drawn from the run's own files and sent to the loggers."""


import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import CSVLogger

from netscope.callbacks.board import Board
from netscope.callbacks.console import say
from netscope.callbacks.logging_sinks import log_figure
from netscope.core.compat import logger_step
from netscope.doctor.measures import probe_layers, weight_layers
from netscope.figures.run import draw_histograms, draw_training
from netscope.models.wrapped import inspected


class TrainingFigures(Callback):
    """When fit ends (also when it is stopped early), draw from what the diagnostics logged:

    - ``activations.png``: per hidden layer, activation mean and spread against steps (the
      Glorot & Bengio 2010 figure), with saturated/dead fractions (from
      :class:`~callbacks.ActivationStatistics`);
    - ``grad_norms.png``: gradient norm per weight layer against steps (from
      :class:`~callbacks.GradientNorms`);
    - ``histograms_weights.png``, ``histograms_grads.png``, ``histograms_activations.png``:
      per layer, its histograms over the epochs as a heat map (from
      :class:`~callbacks.ParameterHistograms` and :class:`~callbacks.ActivationStatistics`).

    The figures read the run's ``csv/metrics.csv`` and ``histograms.jsonl``, the same data
    the loggers received, and ``layers.json``, which this callback writes when fit starts
    (the kinds of the model's layers, for the legends): ``python -m figures RUN_DIR`` redraws
    them from those files. The PNGs go to the run directory; W&B and TensorBoard also
    receive them as images (``figures/activations``, ``figures/histograms_weights``, ...),
    which is how the histograms reach a W&B viewer that cannot chart them (``wandb leet``).
    """

    def __init__(self, dpi: int = 130) -> None:
        """Args:
            dpi: resolution of the PNG files.
        """
        self.dpi = dpi

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.is_global_zero:
            Board.of(trainer).run.write_layers(model_layers(pl_module))

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            if isinstance(logger, CSVLogger):
                logger.save()  # the history on disk is complete before it is read
        run = Board.of(trainer).run
        paths = draw_histograms(run.path, self.dpi)  # histograms.jsonl, whatever the loggers
        if run.has_history():
            paths = draw_training(run.path, self.dpi) | paths
        else:
            say("netscope: no training figures: the run keeps no metrics.csv (give "
                "the trainer a CSVLogger, as netscope's commands do).")
        for name, path in paths.items():
            log_figure(trainer, f"figures/{name}", path, logger_step(trainer))
        if paths:
            say("Figures: " + ", ".join(str(p) for p in paths.values()))


def model_layers(module: torch.nn.Module) -> dict[str, dict[str, str]]:
    """The layers the activation statistics measure (activation modules, or weight layers
    for activations written as functions) and the layers with a weight matrix or kernel
    (Linear, Conv, ...), each ``{qualified name: class name}`` in the order they were built."""
    target = inspected(module)
    _, measured = probe_layers(target)
    return {"activations": {name: type(layer).__name__ for name, layer in measured.items()},
            "weights": {name: type(layer).__name__ for name, layer in weight_layers(target).items()}}
