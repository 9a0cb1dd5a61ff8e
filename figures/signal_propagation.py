"""The signal propagation plot (Brock et al. 2021) of the doctor's pre-flight check.

Per activation layer, input to output: the forward activation std and the backward
gradient (RMS per output) on one training batch at init. Healthy: both flat across depth.
A line that falls or rises geometrically (straight on this log scale) is a vanishing or
exploding signal. Drawn from ``preflight.json``, which the check writes.
"""

import os
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from netscope.core.rundir import RunDir
from netscope.figures.style import layer_colors, plain_log_labels, save, styled


@styled
def signal_propagation_figure(report: dict[str, Any]) -> Figure | None:
    """Two panels from a pre-flight report (``preflight.json``'s content); ``None`` when the
    model has no activation layers to show."""
    layers = [l for l in report.get("layers", []) if l.get("act_std") is not None]
    if not layers:
        return None
    names = [l["name"] for l in layers]
    colors = layer_colors(len(layers))
    figure = Figure(figsize=(max(6.0, 0.35 * len(layers) + 4), 3.8), layout="constrained")
    axes = figure.subplots(1, 2, sharex=True)
    measured = "pre-activation" if (report.get("context") or {}).get("probe") == "pre_activations" \
        else "activation"
    panels = (("act_std", f"forward: {measured} std"), ("grad_rms", "backward: gradient RMS"))
    for axis, (key, title) in zip(axes, panels):
        values = [l.get(key) for l in layers]
        points = [(i, v) for i, v in enumerate(values) if v is not None and v > 0]
        if points:
            axis.plot([i for i, _ in points], [v for _, v in points], color="0.6", lw=1, zorder=1)
            axis.scatter([i for i, _ in points], [v for _, v in points],
                         c=[colors[i] for i, _ in points], s=28, zorder=2)
            axis.set_yscale("log")
            plain_log_labels(axis)
        axis.set_title(title)
        axis.set_xticks(range(len(names)))
        axis.set_xticklabels([f"{n} ({l['kind']})" for n, l in zip(names, layers)],
                             rotation=60 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center",
                             fontsize=7 if len(names) > 8 else 8)
    axes[0].set_ylabel("per layer, one batch at init")
    loss, chance = report.get("loss"), report.get("chance_loss")
    subtitle = f"; initial loss {loss:.3g} (chance {chance:.3g})" if loss is not None and chance else ""
    figure.suptitle(f"Signal propagation, input to output{subtitle}")
    return figure


def draw_signal_propagation(run_dir: str | os.PathLike) -> Path | None:
    """Redraw the run's ``signal_propagation.png`` from its ``preflight.json``."""
    run = RunDir(run_dir)
    report = run.preflight()
    figure = signal_propagation_figure(report) if report else None
    return save(figure, run.figure("signal_propagation")) if figure is not None else None
