"""Histograms of one run over its epochs: one figure per family, a heat map per layer.

The diagnostics take weight, gradient and activation histograms (by default at the end of
every epoch) and keep them in the run's ``histograms.jsonl``
(:meth:`core.rundir.RunDir.histograms`). Each figure shows one family (``weights/``,
``grads/``, ``activations/``): a small panel per layer, input side first, with time
across (epochs, or steps when histograms were taken more often) and values up; the shade
is the share of the layer's values in each bin, on a log scale, so the tails show as well
as the bulk. The shading shows what one curve per layer cannot: a distribution that
spreads, narrows, drifts off zero, piles up at the ends of its range (saturation) or
collapses to one value (dead units, zero init).

A panel's value axis is shared by all its columns, so a distribution that narrows over
training looks narrower; it spans the central 99.8% of every histogram of that layer (the
extreme 0.1% on either side of a histogram may fall outside). Up to 60 layers are drawn, in
rows of six; a family with more has every k-th layer drawn, said in the title.
"""

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from netscope.figures.style import styled

#: The families, their figure file names and titles.
FAMILIES: dict[str, tuple[str, str]] = {
    "weights": ("histograms_weights", "Weights per layer"),
    "grads": ("histograms_grads", "Gradients per layer"),
    "activations": ("histograms_activations", "Activations per layer"),
}
MAX_PANELS = 60
COLUMNS = 6
ROWS_OF_VALUES = 64  # value bins of the common axis a panel's histograms are re-binned onto
TAIL = 0.001  # share left out at each end of every histogram when choosing a panel's range
SHARE_FLOOR = 1e-4  # shares below this are left white
VALUE_LABEL = FuncFormatter(lambda value, _: f"{value:.2g}")


def series(records: Sequence[dict[str, Any]], family: str,
           layers: Sequence[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """The records of ``family``, per histogram name (``<family>/`` removed), each in step
    order with one record per step (a resumed fit may repeat an epoch: the later record wins).

    Args:
        records: the lines of ``histograms.jsonl``.
        family: ``weights``, ``grads`` or ``activations``.
        layers: for ``weights`` and ``grads``: the weight layers (Linear, Conv, ...) whose
            weight matrix or kernel to keep, in depth order (``layers.json``); biases and
            normalization parameters are left out. ``None``: every name, in the order seen.
    """
    named: dict[str, dict[int, dict[str, Any]]] = {}
    for record in records:
        prefix, _, name = str(record.get("name", "")).partition("/")
        if prefix == family and record.get("counts") and len(record.get("edges", ())) > 1:
            named.setdefault(name, {})[int(record["step"])] = record
    if layers is not None and family in ("weights", "grads"):
        kept = {}
        for layer in layers:  # the weight, or its stored form under a parametrization
            for name in (f"{layer}.weight", f"{layer}.parametrizations.weight.original"):
                if name in named:
                    kept[layer] = named[name]
                    break
        named = kept or named
    return {name: [by_step[step] for step in sorted(by_step)] for name, by_step in named.items()}


def cumulative(record: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The record's edges and the share of its values below each edge."""
    counts = np.asarray(record["counts"], dtype=float)
    edges = np.asarray(record["edges"], dtype=float)
    total = counts.sum()
    return edges, np.concatenate([[0.0], np.cumsum(counts)]) / (total if total > 0 else 1.0)


def value_range(history: list[dict[str, Any]]) -> tuple[float, float]:
    """The value axis of one layer's panel: from the lowest to the highest of its
    histograms' ``TAIL`` and ``1 - TAIL`` quantiles (widened around a constant)."""
    low, high = math.inf, -math.inf
    for record in history:
        edges, below = cumulative(record)
        low = min(low, float(np.interp(TAIL, below, edges)))
        high = max(high, float(np.interp(1 - TAIL, below, edges)))
    if not math.isfinite(low) or not math.isfinite(high):
        return -1.0, 1.0
    if high - low <= 1e-12 * max(abs(low), abs(high), 1e-30):  # one value: show it centred
        pad = max(abs(low) * 0.05, 1e-6)
        return low - pad, high + pad
    return low, high


def rebinned(history: list[dict[str, Any]], grid: np.ndarray) -> np.ndarray:
    """``(len(grid) - 1, len(history))`` shares of each histogram's values per bin of
    ``grid``, spreading each original bin's count evenly over its width."""
    columns = []
    for record in history:
        edges, below = cumulative(record)
        if np.all(np.diff(edges) > 0):
            columns.append(np.diff(np.interp(grid, edges, below, left=0.0, right=1.0)))
        else:  # degenerate edges: every value at one point
            column = np.zeros(len(grid) - 1)
            index = np.clip(np.searchsorted(grid, edges[0]) - 1, 0, len(column) - 1)
            column[index] = 1.0
            columns.append(column)
    return np.stack(columns, axis=1)


def time_axis(history: list[dict[str, Any]]) -> tuple[np.ndarray, str]:
    """Column positions: the epoch (1 = after the first) when there is one histogram per
    epoch, else the training step."""
    epochs = [record.get("epoch") for record in history]
    if None not in epochs and len(set(epochs)) == len(epochs):
        return np.asarray(epochs, dtype=float) + 1, "epoch"
    return np.asarray([record["step"] for record in history], dtype=float), "training step"


def column_edges(positions: np.ndarray) -> np.ndarray:
    """Cell boundaries halfway between columns (one unit wide for a single column)."""
    if len(positions) == 1:
        return np.array([positions[0] - 0.5, positions[0] + 0.5])
    middle = (positions[1:] + positions[:-1]) / 2
    return np.concatenate([[2 * positions[0] - middle[0]], middle, [2 * positions[-1] - middle[-1]]])


@styled
def histogram_figure(records: Sequence[dict[str, Any]], family: str,
                     layers: Sequence[str] | None = None) -> Figure | None:
    """One family's figure: a heat map per layer of its histograms over time, or ``None``
    when the run has none of that family (see the module docstring)."""
    named = series(records, family, layers)
    if not named:
        return None
    names = list(named)
    every = math.ceil(len(names) / MAX_PANELS)
    names = names[::every]
    columns = min(COLUMNS, len(names))
    rows = math.ceil(len(names) / columns)
    # Margins are fixed in inches, not found by a layout engine: with 60 panels, matplotlib's
    # constrained layout measures every tick label several times and takes tens of seconds.
    panel_width = min(3.2, max(1.45, 8.4 / columns))  # few layers: larger panels
    panel_height = 1.0 if rows > 3 else 1.6
    left, right, top, bottom, gap = 0.75, 1.0, 0.6, 0.5, 0.42
    width = left + columns * panel_width + (columns - 1) * gap + right
    height = top + rows * panel_height + (rows - 1) * gap + bottom
    figure = Figure(figsize=(max(width, 5.0), height))
    figure.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height,
                           bottom=bottom / height, wspace=gap / panel_width,
                           hspace=gap / panel_height)
    axes = figure.subplots(rows, columns, squeeze=False).flatten()
    norm = LogNorm(vmin=SHARE_FLOOR, vmax=1.0)
    cmap = colormaps["magma_r"].with_extremes(under="white", bad="white")
    mesh = None
    unit = "epoch"
    for index, (axis, name) in enumerate(zip(axes, names)):
        history = named[name]
        low, high = value_range(history)
        grid = np.linspace(low, high, ROWS_OF_VALUES + 1)
        positions, unit = time_axis(history)
        shares = np.ma.masked_less(rebinned(history, grid), SHARE_FLOOR)
        mesh = axis.pcolormesh(column_edges(positions), grid, shares, cmap=cmap, norm=norm,
                               shading="flat", rasterized=True)
        axis.set_title(name, fontsize=7, pad=2)
        axis.tick_params(labelsize=6, length=2, pad=1)
        axis.xaxis.set_major_locator(MaxNLocator(nbins=3, integer=True))
        axis.yaxis.set_major_locator(MaxNLocator(nbins=3))
        axis.yaxis.set_major_formatter(VALUE_LABEL)  # no "1e-12" offset over the title
        axis.grid(False)
        if index < len(names) - columns:  # time labels on the bottom panel of each column
            axis.tick_params(labelbottom=False)
        if low < 0 < high:
            axis.axhline(0, color="0.6", lw=0.5, ls=":")
    for axis in axes[len(names):]:
        axis.set_visible(False)
    figure.supxlabel(unit, fontsize=9, y=0.12 / height)
    figure.supylabel("value", fontsize=9, x=0.12 / width)
    title = FAMILIES[family][1] if family in FAMILIES else family
    shown = f" (one layer in {every} of {len(named)})" if every > 1 else ""
    figure.suptitle(f"{title}{shown}: share of the values per bin, over training",
                    y=1 - 0.15 / height, fontsize=10)
    bar = figure.add_axes((1 - (right - 0.25) / width, bottom / height, 0.12 / width,
                           min(rows * panel_height, 3.0) / height))
    figure.colorbar(mesh, cax=bar, label="share of values")
    bar.tick_params(labelsize=7)
    return figure
