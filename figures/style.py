"""How every netscope figure looks: fonts, the layer colours, saving.

One convention for layers everywhere: colours run along depth from the input side
(light) to the output side (dark), in every figure of a run or a study. Figures are
``matplotlib.figure.Figure`` objects rendered by the Agg canvas, never through ``pyplot``:
nothing global changes and no display is needed.
"""

import functools
from collections.abc import Callable
from pathlib import Path

import matplotlib
from matplotlib import colormaps, ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

STYLE = {
    "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
}


def styled(draw: Callable[..., Figure | None]) -> Callable[..., Figure | None]:
    """Draw under :data:`STYLE` (fonts, spines and grid are read when artists are made)."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)
    return wrapper


def layer_colors(count: int) -> list[tuple[float, ...]]:
    """One color per layer, input side light to output side dark, so depth reads at a glance."""
    cmap = colormaps["viridis_r"]
    return [cmap(0.15 + 0.8 * i / max(count - 1, 1)) for i in range(count)]


def save(figure: Figure, path: str | Path, dpi: int = 130, tight: bool = True) -> Path:
    """Render ``figure`` to a PNG file and return its path.

    ``tight`` crops the page to what is drawn (one more measuring pass over every text);
    a figure laid out with fixed margins does without it.
    """
    path = Path(path)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=dpi, bbox_inches="tight" if tight else None)
    return path


def plain_log_labels(axis) -> None:
    """Label a log axis with plain numbers (0.3, not 3×10⁻¹); on an axis spanning under
    about 1.5 decades, where there would be one label or none, also label 2, 3 and 5 x 10ⁿ."""
    axis.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))

    def minor(value: float, _: int) -> str:
        low, high = axis.get_ylim()
        leading = f"{value:e}"[0]
        return f"{value:g}" if 0 < low and high / low < 30 and leading in "235" else ""

    axis.yaxis.set_minor_formatter(ticker.FuncFormatter(minor))
    axis.grid(True, which="minor", axis="y", alpha=0.12)


def legend_beside(axis) -> None:
    """A legend beside the axis (never over the lines)."""
    if axis.get_legend_handles_labels()[0]:
        axis.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
