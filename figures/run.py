"""Every figure of one run, drawn from the run directory's own files.

A run leaves its scalar history in ``csv/metrics.csv`` (read by :mod:`core.history`), the
kinds of its layers in ``layers.json`` (written by :class:`callbacks.TrainingFigures` when
fit starts), its test results in ``test_confusion_matrix.csv``, and, where the doctor ran,
its pre-flight in ``preflight.json``. The callbacks call :func:`draw_run` when a stage ends;
``python -m figures RUN_DIR`` calls it on any run, later, with nothing but its files.
"""

import os
from pathlib import Path

from netscope.core.files import read_json
from netscope.core.history import read_history
from netscope.figures.evaluation import draw_confusion
from netscope.figures.style import save
from netscope.figures.training import activation_figure, gradient_figure

#: ``{"activations": {"features.1": "ReLU"}, "weights": {"features.0": "Linear"}}``: the
#: model's activation layers and layers with a weight matrix, input to output.
LAYERS_FILE = "layers.json"


def draw_training(run_dir: str | os.PathLike, dpi: int = 130) -> dict[str, Path]:
    """``activations.png`` and ``grad_norms.png``, where the history has their data."""
    run_dir = Path(run_dir)
    history = read_history(run_dir)
    layers = read_json(run_dir / LAYERS_FILE) or {}
    activations = layers.get("activations") or {
        name.removeprefix("act_mean/"): "" for name in history.names("act_mean/")}
    figures = {
        "activations": activation_figure(history, activations),
        "grad_norms": gradient_figure(history, layers.get("weights") or None),
    }
    return {name: save(figure, run_dir / f"{name}.png", dpi)
            for name, figure in figures.items() if figure is not None}


def draw_run(run_dir: str | os.PathLike) -> dict[str, Path]:
    """Every figure the run's files allow, by name."""
    paths = draw_training(run_dir)
    confusion = draw_confusion(run_dir)
    if confusion is not None:
        paths["test_confusion_matrix"] = confusion
    return paths
