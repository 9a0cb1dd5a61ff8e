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
from netscope.figures.style import styled


@styled
def curvature_figure(history: History) -> Figure | None:
    """The run's sharpness and limit (top) and noise scale and batch size (bottom), or
    ``None`` when no sharpness was logged."""
    steps, sharpness = history.series("sharpness")
    if not steps:
        return None
    noise_steps, noise = history.series("noise_scale")
    rows = 2 if noise_steps else 1
    figure = Figure(figsize=(8, 3.6 * rows), layout="constrained")
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    axes[0].plot(steps, sharpness, marker="o", ms=3, lw=1.8, color="C0", label="sharpness")
    limit_steps, limit = history.series("sharpness_limit")
    if limit_steps:
        axes[0].plot(limit_steps, limit, ls="--", lw=1.5, color="C3",
                     label="stability limit")
        if max(limit) > 5 * max(sharpness) > 0:  # far from the edge: both in view
            axes[0].set_yscale("log")
        else:
            axes[0].set_ylim(0, 1.25 * max(max(sharpness), max(limit)))
    axes[0].set_ylabel("top Hessian eigenvalue\n(preconditioned: Adam, RMSprop)")
    axes[0].set_title("Sharpness against the optimizer's stability limit")
    axes[0].legend(loc="lower right")
    if noise_steps:
        axes[1].plot(noise_steps, noise, marker="o", ms=3, lw=1.8, color="C2",
                     label="noise scale B_simple")
        batch_steps, batch = history.series("batch_size")
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
