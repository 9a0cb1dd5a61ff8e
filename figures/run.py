"""Every figure of one run, drawn from the run directory's own files.

A run leaves its scalar history in ``csv/metrics.csv``, its histograms in
``histograms.jsonl``, the kinds of its layers in
``layers.json`` (written by :class:`callbacks.TrainingFigures` when fit starts), its test
results in ``test_confusion_matrix.csv``, and, where the doctor ran, its pre-flight in
``preflight.json``; :class:`core.rundir.RunDir` reads them. The callbacks call the drawing
functions when a stage ends; ``python -m figures RUN_DIR`` calls :func:`draw_run` on any run,
later, with nothing but its files.
"""

import os
from pathlib import Path

from netscope.core.rundir import RunDir
from netscope.figures.curvature import curvature_figure
from netscope.figures.evaluation import draw_confusion
from netscope.figures.histograms import FAMILIES, histogram_figure
from netscope.figures.signal_propagation import draw_signal_propagation
from netscope.figures.style import save
from netscope.figures.training import activation_figure, gradient_figure


def draw_training(run_dir: str | os.PathLike, dpi: int = 130) -> dict[str, Path]:
    """``activations.png``, ``grad_norms.png`` and ``curvature.png``, where the history has
    their data."""
    run = RunDir(run_dir)
    history = run.history()
    layers = run.layers()
    activations = layers.get("activations") or {
        name.removeprefix("act_mean/"): "" for name in history.names("act_mean/")}
    figures = {
        "activations": activation_figure(history, activations),
        "grad_norms": gradient_figure(history, layers.get("weights") or None),
        "curvature": curvature_figure(history),
    }
    return {name: save(figure, run.figure(name), dpi)
            for name, figure in figures.items() if figure is not None}


def draw_histograms(run_dir: str | os.PathLike, dpi: int = 130) -> dict[str, Path]:
    """``histograms_weights.png``, ``histograms_grads.png`` and ``histograms_activations.png``,
    where ``histograms.jsonl`` has histograms of that family."""
    run = RunDir(run_dir)
    records = run.histograms()
    if not records:
        return {}
    weight_layers = list(run.layers().get("weights") or {}) or None
    paths = {}
    for family, (name, _) in FAMILIES.items():
        figure = histogram_figure(records, family, weight_layers)
        if figure is not None:
            paths[name] = save(figure, run.figure(name), dpi, tight=False)  # fixed margins
    return paths


def draw_run(run_dir: str | os.PathLike) -> dict[str, Path]:
    """Every figure the run's files allow, by name."""
    paths = draw_training(run_dir)
    paths |= draw_histograms(run_dir)
    signal = draw_signal_propagation(run_dir)
    if signal is not None:
        paths["signal_propagation"] = signal
    confusion = draw_confusion(run_dir)
    if confusion is not None:
        paths["test_confusion_matrix"] = confusion
    return paths
