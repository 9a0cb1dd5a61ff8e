"""The report's curvature section: where each run's sharpness settled against its limit.

A run with ``callbacks.Curvature`` has ``sharpness_over_limit`` in its ``metrics.json``: the
median of sharpness / stability limit over the last third of its measurements. Near 1 it
trained at the edge of stability (Cohen et al. 2021); well below, its learning rate never
constrained the curvature; above, its steps overshot the sharpest direction.
"""

import math

from netscope.core.curvature import BATCH, LIMIT, NOISE, SETTLED, SHARPNESS
from netscope.doctor.thresholds import Thresholds
from netscope.studies.rows import Row
from netscope.studies.stats import Setting

#: Within this fraction of 1, a run "reached and hovered at" its limit (the doctor's band).
EDGE_BAND = Thresholds().edge_band


def verdict(ratio: float) -> str:
    """In words: where a sharpness / limit ratio settled."""
    if abs(ratio - 1) <= EDGE_BAND:
        return "reached the limit and hovered there (edge of stability)"
    if ratio < 1:
        return f"stayed below the limit ({ratio:.0%} of it): the learning rate never bound"
    return f"settled above the limit ({ratio:.1f}x): its steps overshoot the sharpest direction"


def _cell(row: Row, name: str, digits: str = ".3g") -> str:
    value = row.summary.get(name)
    return format(value, digits) if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def curvature_section(settings: list[Setting]) -> list[str]:
    """The section's lines (none when no run measured the curvature)."""
    rows = [(s, r) for s in settings for r in s.rows
            if r.summary.get(SETTLED) is not None or r.summary.get(SHARPNESS) is not None]
    if not rows:
        return []
    intro = ("Sharpness is the top Hessian eigenvalue of the training loss (preconditioned "
             "for Adam, RMSprop and Adagrad), the limit the optimizer's stability limit "
             "(2/η for gradient descent); `sharpness / limit` is the median over the last third "
             "of each run's measurements.")
    header = ("| setting | run | sharpness (last) | limit (last) | sharpness / limit | "
              "noise scale (last) | batch | where it settled |")
    lines = [intro, "", header, "|---|---|---|---|---|---|---|---|"]
    for setting, row in rows:
        ratio = row.summary.get(SETTLED)
        words = verdict(ratio) if isinstance(ratio, (int, float)) else "no stability limit known"
        lines.append(f"| {setting.label} | {row.label} | {_cell(row, SHARPNESS)} | "
                     f"{_cell(row, LIMIT)} | {_cell(row, SETTLED, '.2f')} | "
                     f"{_cell(row, NOISE)} | {_cell(row, BATCH, '.0f')} | {words} |")
    return lines
