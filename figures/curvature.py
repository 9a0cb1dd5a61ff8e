"""``curvature.png``: the sharpness against its stability limit over training, per run.

Cohen et al. (ICLR 2021, figure 1) for one run: the sharpness (the top Hessian eigenvalue of
the training loss, ``callbacks.Curvature``) rises ("progressive sharpening") until it meets
the optimizer's limit (2/η for gradient descent, dashed), then hovers there. Below, where it
was measured, the gradient noise scale against the batch size in use (McCandlish et al.
2018): a batch far below the noise scale could grow, one far above it wastes images.
"""

import numpy as np
from matplotlib.figure import Figure

from netscope.core.history import History
from netscope.core.curvature import BATCH, LIMIT, NOISE, SETTLED, SHARPNESS, ratios
from netscope.figures.style import styled


@styled
def curvature_figure(history: History) -> Figure | None:
    """The run's sharpness and limit (top) and noise scale and batch size (bottom), or
    ``None`` when no sharpness was logged."""
    steps, sharpness = history.series(SHARPNESS)
    if not steps:
        return None
    noise_steps, noise = history.series(NOISE)
    rows = 2 if noise_steps else 1
    figure = Figure(figsize=(8, 3.6 * rows), layout="constrained")
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    axes[0].plot(steps, sharpness, marker="o", ms=3, lw=1.8, color="C0", label="sharpness")
    limit_steps, limit = history.series(LIMIT)
    if limit_steps:
        axes[0].plot(limit_steps, limit, ls="--", lw=1.5, color="C3",
                     label="stability limit")
        if max(limit) > 5 * max(sharpness) > 0:  # far from the edge: both in view
            axes[0].set_yscale("log")
        else:
            axes[0].set_ylim(0, 1.25 * max(max(sharpness), max(limit)))
    axes[0].set_ylabel("sharpness")
    axes[0].set_title("Sharpness (top Hessian eigenvalue; preconditioned for adaptive "
                      "optimizers) against the stability limit", fontsize=10)
    axes[0].legend(loc="lower right")
    if noise_steps:
        axes[1].plot(noise_steps, noise, marker="o", ms=3, lw=1.8, color="C2",
                     label="noise scale B_simple")
        batch_steps, batch = history.series(BATCH)
        if batch_steps:
            axes[1].plot(batch_steps, batch, ls="--", lw=1.5, color="0.3", label="batch size")
        values = np.asarray([*noise, *(batch if batch_steps else [])], dtype=float)
        if (values > 0).all():
            axes[1].set_yscale("log")
        axes[1].set_ylabel("samples")
        axes[1].set_title("Gradient noise scale against the batch size")
        axes[1].legend(loc="lower right")
    axes[-1].set_xlabel("step")
    return figure


def ratio_history(history: History) -> History:
    """A history of ``sharpness_over_limit`` wherever both the sharpness and its limit were
    logged (:func:`doctor.curvature.ratios`)."""
    derived = History()
    for step, *_, ratio in ratios(history):
        derived.record(step, {SETTLED: ratio})
    return derived


@styled
def study_curvature_figure(groups: list, title: str) -> Figure | None:
    """Sharpness / stability limit over steps, one line (mean over seeds) and band (min to
    max) per setting: 1 is the edge of stability. ``groups``: :class:`figures.study.Group`."""
    from netscope.figures.study import BAND, _name, over_seeds, setting_colors

    ratios = [[ratio_history(h) for h in g.histories] for g in groups]
    if not any(r for runs in ratios for r in runs):
        return None
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    axis = figure.subplots()
    for group, runs, color in zip(groups, ratios, setting_colors(len(groups))):
        steps, mean, low, high = over_seeds([r for r in runs if r], SETTLED)
        if len(steps):
            axis.plot(steps, mean, color=color, lw=1.6, label=_name(group))
            axis.fill_between(steps, low, high, color=color, alpha=0.2, lw=0)
    axis.axhline(1.0, color="0.2", ls="--", lw=1.2, label="the stability limit")
    axis.set_yscale("log")
    axis.set(xlabel="step", ylabel="sharpness / stability limit",
             title="Where the sharpness sits against its limit (1 = edge of stability)")
    figure.legend(*axis.get_legend_handles_labels(), loc="outside right center",
                  title=f"setting: mean line\n{BAND}")
    figure.suptitle(title)
    return figure
