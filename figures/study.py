"""Study figures: each setting's curves as the mean over its seeds with a min-max band.

A study compares settings, each run with several seeds. A line per run would make the
noise look like a difference, so every figure draws, per setting, the mean over seeds
at each logged step with a band from the lowest to the highest seed (the legend says
so). Settings keep one colour across the shared axes; in a setting's own panel, layers
follow :func:`figures.style.layer_colors` (input side light, output side dark), as in
every other netscope figure. Every setting gets its panel in every figure, with a word
in it when its runs logged nothing for that figure.
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from netscope.core.history import History
from netscope.figures.style import layer_colors, plain_log_labels, styled

BAND = "band: min to max over seeds"


@dataclass
class Group:
    """What the figures need of one setting: its name and its runs' histories."""

    label: str
    histories: list[History] = field(default_factory=list)
    note: str = ""  # e.g. "1 of 3 diverged", shown beside the name


def over_seeds(histories: list[History], name: str) -> tuple[np.ndarray, ...]:
    """``steps, mean, low, high`` of ``name`` over the runs, at each step where at least
    one run has a finite value (a diverged seed drops out where it ends)."""
    by_step: dict[int, list[float]] = {}
    for history in histories:
        for step, value in zip(*history.series(name)):
            if math.isfinite(value):
                by_step.setdefault(step, []).append(value)
    steps = np.array(sorted(by_step))
    values = [by_step[s] for s in steps]
    return (steps, np.array([np.mean(v) for v in values]), np.array([min(v) for v in values]),
            np.array([max(v) for v in values]))


def setting_colors(count: int) -> list:
    """Distinct colours for ``count`` settings (tab10, or tab20 beyond ten)."""
    cmap = colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def _name(group: Group) -> str:
    seeds = len(group.histories)
    text = f"{group.label} ({seeds} seed{'s' * (seeds != 1)}"
    return text + (f", {group.note})" if group.note else ")")


@styled
def curves_figure(groups: list[Group], title: str) -> Figure | None:
    """Training loss and validation accuracy against steps, every setting on shared axes."""
    if not any("train/loss" in h or "val/acc" in h for g in groups for h in g.histories):
        return None
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    loss_axis, acc_axis = figure.subplots(1, 2, sharex=True)
    lows, highs = [], []
    for group, color in zip(groups, setting_colors(len(groups))):
        for axis, name in ((loss_axis, "train/loss"), (acc_axis, "val/acc")):
            steps, mean, low, high = over_seeds(group.histories, name)
            if not len(steps):
                continue
            axis.plot(steps, mean, color=color, lw=1.6, marker="o" if name == "val/acc" else None,
                      ms=3.5, label=_name(group))
            axis.fill_between(steps, low, high, color=color, alpha=0.2, lw=0)
            if name == "train/loss":
                lows += [v for v in low if v > 0]
                highs += list(high)
    if lows and max(highs) / min(lows) > 30:
        loss_axis.set_yscale("log")  # a diverging or stalling setting would flatten the others
    loss_axis.set(title="Training loss", xlabel="step", ylabel="loss (per logged step)")
    acc_axis.set(title="Validation accuracy", xlabel="step", ylabel="accuracy")
    handles, names = (loss_axis if loss_axis.lines else acc_axis).get_legend_handles_labels()
    figure.legend(handles, names, loc="outside right center", title=f"setting: mean line\n{BAND}")
    figure.suptitle(title)
    return figure


@styled
def gradient_figure(groups: list[Group], title: str) -> Figure | None:
    """Per setting, the gradient norm of every weight against steps (log scale, shared)."""
    def names(history: History) -> list[str]:
        norms = [n for n in history.names("grad_norm/") if n != "grad_norm/total"]
        return [n for n in norms if n.endswith("weight")] or norms

    def extra(axis, group: Group) -> None:
        steps, mean, low, high = over_seeds(group.histories, "grad_norm/total")
        if len(steps):
            axis.plot(steps, mean, color="black", linestyle="--", lw=1.2)

    return _panels(groups, names, title, ylabel="gradient L2 norm", log=True,
                   label=lambda n: n.removeprefix("grad_norm/"), extra=extra,
                   extra_handle=Line2D([], [], color="black", linestyle="--", label="total (all parameters)"),
                   missing="no gradient norms logged")


@styled
def activation_figure(groups: list[Group], title: str) -> Figure | None:
    """Per setting, the saturated (sigmoid, tanh: solid) or dead (ReLU: dashed) fraction
    of each layer's units against steps."""
    def names(history: History) -> list[str]:
        return history.names("act_saturated/") + history.names("act_dead/")

    def label(name: str) -> str:
        family, _, layer = name.partition("/")
        return f"{layer} {family.removeprefix('act_')}"

    return _panels(groups, names, title, ylabel="fraction of units", ylim=(-0.02, 1.02), label=label,
                   missing="no saturated or dead fraction logged\n(this activation has neither)")


def _panels(groups: list[Group], names_of: Callable[[History], list[str]], title: str, ylabel: str,
            label: Callable[[str], str], missing: str, log: bool = False,
            ylim: tuple[float, float] | None = None, extra=None, extra_handle=None) -> Figure | None:
    """One panel per setting (never dropped), each layer's mean over seeds with its band."""
    found = [sorted(dict.fromkeys(n for h in g.histories for n in names_of(h)), key=_depth)
             for g in groups]
    if not any(found):
        return None
    columns = min(4, len(groups))
    rows = math.ceil(len(groups) / columns)
    figure = Figure(figsize=(3.8 * columns + 2.4, 3.0 * rows + 0.9), layout="constrained")
    axes = figure.subplots(rows, columns, sharex=True, sharey=True, squeeze=False)
    layers = sorted({label(n).rsplit(" ", 1)[0] if " " in label(n) else label(n)
                     for names in found for n in names}, key=_depth)
    colors = dict(zip(layers, layer_colors(len(layers))))
    positive, zeros = [], False
    for axis, group, names in zip(axes.flat, groups, found):
        for name in names:
            steps, mean, low, high = over_seeds(group.histories, name)
            layer = label(name).rsplit(" ", 1)[0] if " " in label(name) else label(name)
            style = "--" if name.startswith("act_dead/") else "-"
            axis.plot(steps, mean, color=colors[layer], lw=1.2, linestyle=style)
            axis.fill_between(steps, low, high, color=colors[layer], alpha=0.15, lw=0)
            positive += [v for v in low if v > 0]
            zeros = zeros or bool((low == 0).any())
        if extra is not None:
            extra(axis, group)
        if not names:
            axis.text(0.5, 0.5, missing, transform=axis.transAxes, ha="center", va="center",
                      fontsize=8, color="0.4")
        axis.set_title(_name(group), fontsize=9)
    for axis in axes.flat[len(groups):]:
        axis.set_visible(False)
    for axis in axes[-1]:
        axis.set_xlabel("step")
    for axis in axes[:, 0]:
        axis.set_ylabel(ylabel)
    if log and positive and zeros:
        # Logarithmic above the smallest non-zero value and linear below it, so a layer
        # whose gradient is exactly zero (zero init) still shows, as a line at 0.
        axes[0, 0].set_yscale("symlog", linthresh=min(positive), linscale=0.3)
    elif log and positive:
        axes[0, 0].set_yscale("log")
        plain_log_labels(axes[0, 0])
    if ylim:
        axes[0, 0].set_ylim(*ylim)
    handles = [Line2D([], [], color=colors[layer], label=layer) for layer in layers]
    if len(handles) > 12:  # too many layers to name: say how the colours run instead
        handles = [handles[0], handles[len(handles) // 2], handles[-1]]
        handles[0].set_label(f"{layers[0]} (input side)")
        handles[-1].set_label(f"{layers[-1]} (output side)")
    if any(n.startswith("act_dead/") for names in found for n in names):
        handles += [Line2D([], [], color="0.3", label="saturated"),
                    Line2D([], [], color="0.3", linestyle="--", label="dead")]
    if extra_handle is not None:
        handles.append(extra_handle)
    figure.legend(handles=handles, loc="outside right center", title=f"layer: mean line\n{BAND}")
    figure.suptitle(title)
    return figure


def _depth(name: str) -> list:
    """Sort key that puts ``features.2`` before ``features.10`` (input side first)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]
