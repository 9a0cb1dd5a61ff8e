"""The study figures: every run on shared axes, and per-run small multiples.

Each run keeps one colour across figures of the curves; within a run's panel, layers are
coloured from the input (dark) to the output (light) so depth reads at a glance.
"""

import math
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import LogFormatterSciNotation  # noqa: E402

from studies.history import Series, finite  # noqa: E402

DPI = 130
LAYER_COLORMAP = "viridis"


@dataclass
class RunCurves:
    """What the figures need of one run."""

    label: str
    status: str
    history: dict[str, Series]


def run_colors(count: int) -> list:
    """Distinct colours for ``count`` runs (tab10, or tab20 beyond ten runs)."""
    cmap = plt.get_cmap("tab10" if count <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(count)]


def training_curves(runs: list[RunCurves], path: Path, title: str) -> Path | None:
    """Training loss and validation accuracy against steps, all runs on the same axes."""
    if not any("train/loss" in run.history or "val/acc" in run.history for run in runs):
        return None
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True, layout="constrained")
    lows, highs = [], []
    for run, color in zip(runs, run_colors(len(runs))):
        name = run.label if run.status == "completed" else f"{run.label} ({run.status})"
        if "train/loss" in run.history:
            steps, values = finite(run.history["train/loss"])
            loss_ax.plot(steps, values, color=color, linewidth=1.4, label=name)
            lows += [v for v in values if v > 0]
            highs += values
        if "val/acc" in run.history:
            steps, values = finite(run.history["val/acc"])
            acc_ax.plot(steps, values, color=color, linewidth=1.6, marker="o", markersize=4, label=name)
    if lows and max(highs) / min(lows) > 30:
        loss_ax.set_yscale("log")  # a diverging or stalling run would flatten the others
    loss_ax.set(title="Training loss", xlabel="step", ylabel="loss (per logged step)")
    acc_ax.set(title="Validation accuracy", xlabel="step", ylabel="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
    handles, names = (loss_ax if loss_ax.lines else acc_ax).get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right center", title="run")
    fig.suptitle(title)
    return _save(fig, path)


def gradient_norms(runs: list[RunCurves], path: Path, title: str) -> Path | None:
    """Per run, the gradient norm of every weight against steps (log scale, shared)."""
    def series(run: RunCurves) -> dict[str, Series]:
        norms = {n.removeprefix("grad_norm/"): s for n, s in run.history.items()
                 if n.startswith("grad_norm/") and n != "grad_norm/total"}
        weights = {n: s for n, s in norms.items() if n.endswith("weight")}
        return weights or norms

    def extra(ax, run: RunCurves) -> None:
        if "grad_norm/total" in run.history:
            steps, values = finite(run.history["grad_norm/total"])
            ax.plot(steps, values, color="black", linestyle="--", linewidth=1.2)

    return _small_multiples(runs, series, path, title, ylabel="gradient L2 norm", log=True,
                            extra=extra, extra_handle=Line2D([], [], color="black", linestyle="--",
                                                             label="total (all parameters)"))


def activation_fractions(runs: list[RunCurves], path: Path, title: str) -> Path | None:
    """Per run, the saturated (sigmoid, tanh) or dead (ReLU) fraction of each layer."""
    def series(run: RunCurves) -> dict[str, Series]:
        found = {}
        for family, word in (("act_saturated/", "saturated"), ("act_dead/", "dead")):
            found |= {f"{n.removeprefix(family)} {word}": s for n, s in run.history.items()
                      if n.startswith(family)}
        return found

    return _small_multiples(runs, series, path, title, ylabel="fraction of units", ylim=(-0.02, 1.02))


def _small_multiples(runs, series_of, path: Path, title: str, ylabel: str, log: bool = False,
                     ylim: tuple[float, float] | None = None, extra=None, extra_handle=None) -> Path | None:
    per_run = [(run, series_of(run)) for run in runs]
    per_run = [(run, found) for run, found in per_run if found]
    if not per_run:
        return None
    columns = min(4, len(per_run))
    rows = math.ceil(len(per_run) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.8 * columns + 2.2, 3.0 * rows + 0.9),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    cmap = plt.get_cmap(LAYER_COLORMAP)
    widest: list[str] = []
    positive: list[float] = []
    zeros = False
    for ax, (run, found) in zip(axes.flat, per_run):
        names = sorted(found, key=_natural)
        widest = names if len(names) > len(widest) else widest
        for position, name in enumerate(names):
            steps, values = finite(found[name])
            positive += [v for v in values if v > 0]
            zeros = zeros or any(v == 0 for v in values)
            shade = cmap(0.9 * position / max(1, len(names) - 1))
            ax.plot(steps, values, color=shade, linewidth=1.2,
                    linestyle="--" if name.endswith(" dead") else "-")
        if extra is not None:
            extra(ax, run)
        ax.set_title(run.label if run.status == "completed" else f"{run.label} ({run.status})")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(per_run):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("step")
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    if log and positive and zeros:
        # Logarithmic above the smallest non-zero value and linear below it, so a layer
        # whose gradient is exactly zero (zero init) still shows, as a line at 0.
        axes[0, 0].set_yscale("symlog", linthresh=min(positive), linscale=0.3)
    elif log and positive:
        axes[0, 0].set_yscale("log")
        # Label the 2, 3, 5 ticks too when the values span less than two decades.
        axes[0, 0].yaxis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False,
                                                                     minor_thresholds=(2, 0.5)))
    if ylim:
        axes[0, 0].set_ylim(*ylim)
    handles = [Line2D([], [], color=cmap(0.9 * i / max(1, len(widest) - 1)),
                      linestyle="--" if name.endswith(" dead") else "-", label=name)
               for i, name in enumerate(widest)]
    if len(handles) > 12:  # too many layers to name: say how the colours run instead
        handles = [handles[0], handles[len(handles) // 2], handles[-1]]
        handles[0].set_label(f"{widest[0]} (input side)")
        handles[-1].set_label(f"{widest[-1]} (output side)")
    if extra_handle is not None:
        handles.append(extra_handle)
    fig.legend(handles=handles, loc="outside right center", title="layer")
    fig.suptitle(title)
    return _save(fig, path)


def _natural(name: str) -> list:
    """Sort key that puts ``features.2`` before ``features.10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
