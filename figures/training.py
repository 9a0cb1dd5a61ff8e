"""Training figures of one run: activation statistics and gradient norms per layer."""

import math

import numpy as np
from matplotlib.figure import Figure

from netscope.core.history import History
from netscope.figures.style import layer_colors, legend_beside, plain_log_labels, styled

#: Output range of activations with a bounded side: the spread band is clipped to it
#: (mean - std of a ReLU layer can be negative; its outputs never are).
OUTPUT_RANGE: dict[str, tuple[float, float]] = {
    "ReLU": (0.0, math.inf), "Sigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0),
}


@styled
def activation_figure(history: History, layer_types: dict[str, str]) -> Figure | None:
    """Glorot & Bengio (2010, fig. 2) for this run: per hidden layer, the mean activation
    (line) and mean ± one standard deviation (band, clipped to the output range) against
    training steps; below, the share of saturated outputs (sigmoid, tanh) or of dead units
    (ReLU units that are zero for every sample)
    where the layers have one. Up to four layers share one panel, as in the paper; more
    get one small panel each, which stays readable where overlapping bands would not.
    """
    layers = [name for name in layer_types if history.series(f"act_mean/{name}")[0]]
    if not layers:
        return None
    fractions = [(kind, name) for name in layers for kind in ("act_saturated", "act_dead")
                 if history.series(f"{kind}/{name}")[0]]
    columns = 1 if len(layers) <= 4 else 4
    rows = 1 if columns == 1 else math.ceil(len(layers) / columns)
    top_height = 4.2 if columns == 1 else 2.1 * rows
    height = top_height + (2.8 if fractions else 0) + 0.6
    figure = Figure(figsize=(10, height), layout="constrained")
    top, bottom = (figure.subfigures(2, 1, height_ratios=[top_height, 2.8]) if fractions
                   else (figure, None))
    grid = top.subplots(rows, columns, sharex=True, sharey=True, squeeze=False).flatten()
    colors = dict(zip(layers, layer_colors(len(layers))))
    for index, name in enumerate(layers):
        axis = grid[0] if columns == 1 else grid[index]
        steps, mean = (np.asarray(v, dtype=float) for v in history.series(f"act_mean/{name}"))
        std = np.asarray(history.series(f"act_std/{name}")[1], dtype=float)
        axis.plot(steps, mean, color=colors[name], lw=1.8, marker="o", ms=2.5,
                  label=f"{name} ({layer_types[name]})")
        if len(std) == len(mean):
            low, high = OUTPUT_RANGE.get(layer_types[name], (-math.inf, math.inf))
            band = np.clip(mean - std, low, high), np.clip(mean + std, low, high)
            alpha = 0.15 if columns == 1 else 0.3  # bands overlap only in the shared panel
            axis.fill_between(steps, *band, color=colors[name], alpha=alpha, lw=0)
        if columns > 1:
            axis.set_title(f"{name} ({layer_types[name]})", fontsize=9)
    for axis in grid[len(layers) if columns > 1 else 1:]:  # empty cells of the last row
        axis.set_visible(False)
    top.suptitle("Activations per hidden layer: mean (line), ± 1 std (band)")
    top.supylabel("activation value")
    if columns == 1:
        legend_beside(grid[0])
    if bottom is not None:
        axis = bottom.subplots()
        for kind, name in fractions:
            steps, values = history.series(f"{kind}/{name}")
            axis.plot(steps, values, "-" if kind == "act_saturated" else "--", color=colors[name],
                      lw=1.5, label=f"{name} {kind.removeprefix('act_')}")
        axis.set_ylim(-0.02, 1.02)
        axis.set_ylabel("fraction")
        axis.set_title("Saturated outputs (sigmoid, tanh, solid) or dead units (ReLU, dashed)")
        axis.set_xlabel("training step")
        legend_beside(axis)
    else:
        top.supxlabel("training step")
    return figure


@styled
def gradient_figure(history: History, layer_types: dict[str, str] | None = None) -> Figure | None:
    """Gradient L2 norm per layer (the parameters of one module together) against steps,
    on a log scale: vanishing gradients show as lower lines towards the input layer.

    Args:
        history: what :class:`~callbacks.GradientNorms` logged.
        layer_types: the layers to draw and their class names (``{"features.0": "Linear"}``);
            default: every module with parameters.
    """
    layers: dict[str, list[str]] = {}
    for name in history.names("grad_norm/"):
        layer = name.removeprefix("grad_norm/").rpartition(".")[0]
        if name != "grad_norm/total" and (layer_types is None or layer in layer_types):
            layers.setdefault(layer, []).append(name)
    if not layers:
        return None
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    axis = figure.subplots()
    plotted = False
    for color, (layer, names) in zip(layer_colors(len(layers)), layers.items()):
        steps = history.series(names[0])[0]
        squares = np.zeros(len(steps))
        for name in names:  # norm of a layer = sqrt of the sum of its parameters' squared norms
            values = np.asarray(history.series(name)[1], dtype=float)
            squares[: len(values)] += values[: len(steps)] ** 2
        norms = np.sqrt(squares)
        norms[~np.isfinite(norms) | (norms <= 0)] = math.nan  # gaps, not a broken log axis
        label = f"{layer} ({layer_types[layer]})" if layer_types else layer
        axis.plot(steps, norms, color=color, lw=1.8, marker="o", ms=2.5, label=label)
        plotted = plotted or bool(np.isfinite(norms).any())
    steps, total = history.series("grad_norm/total")
    if steps:
        total = np.asarray(total, dtype=float)
        total[~np.isfinite(total) | (total <= 0)] = math.nan
        axis.plot(steps, total, "--", color="0.35", lw=1.2, label="total")
    if plotted:
        axis.set_yscale("log")
        plain_log_labels(axis)
    axis.set_title("Gradient norm per layer (L2 of weights and biases together)")
    axis.set_ylabel("‖gradient‖₂")
    axis.set_xlabel("training step")
    legend_beside(axis)
    return figure


