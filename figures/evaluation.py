"""The test-time figure of one run: the confusion matrix, from its CSV."""

import csv
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from netscope.core.rundir import RunDir
from netscope.figures.style import save, styled


def read_confusion(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Class names and counts (rows: true class) from ``<prefix>_confusion_matrix.csv``."""
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    names = rows[0][1:]
    counts = np.array([[int(v) for v in row[1:]] for row in rows[1:]], dtype=np.int64)
    return names, counts


@styled
def confusion_figure(class_names: list[str], counts: np.ndarray, title: str = "test") -> Figure:
    """Counts in the cells, coloured by the share of the true class (a row)."""
    n = len(class_names)
    side = max(4.0, 0.6 * n + 2.5)
    figure = Figure(figsize=(side + 1, side), layout="constrained")
    axes = figure.subplots()
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    if n <= 30:  # beyond that, numbers in the cells are unreadable
        fontsize = 11 if n <= 10 else 7
        for i in range(n):
            for j in range(n):
                axes.text(j, i, str(int(counts[i, j])), ha="center", va="center",
                          fontsize=fontsize, color="white" if shares[i, j] > 0.5 else "black")
    axes.set_xticks(range(n), class_names, rotation=45, ha="right")
    axes.set_yticks(range(n), class_names)
    axes.grid(False)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    accuracy = np.trace(counts) / max(int(counts.sum()), 1)
    axes.set_title(f"{title} confusion matrix (accuracy {accuracy:.4f})")
    return figure


def draw_confusion(run_dir: str | os.PathLike, prefix: str = "test") -> Path | None:
    """``<prefix>_confusion_matrix.png`` from the CSV beside it (``None`` without one)."""
    source = RunDir(run_dir).report(prefix, "confusion_matrix")
    if not source.exists():
        return None
    names, counts = read_confusion(source)
    return save(confusion_figure(names, counts, prefix),
                RunDir(run_dir).figure(f"{prefix}_confusion_matrix"), dpi=120)
