"""A run's scalar history, read from the ``csv/metrics.csv`` every run writes.

Lightning's CSVLogger writes one column per metric and one row per logging call, so rows
are sparse; a metric logged both per step and per epoch appears as ``<name>_step`` and
``<name>_epoch``. This module turns that into one ``(steps, values)`` series per metric.
"""

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

CSV_PATH = Path("csv") / "metrics.csv"


@dataclass
class Series:
    """One metric's values against the global step (non-finite values kept as NaN)."""

    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


def read_history(run_dir: Path) -> dict[str, Series]:
    """Every metric of a run by its logged name, the per-step twin of a metric under the
    plain name (``train/loss_step`` -> ``train/loss``); ``{}`` when there is no history."""
    path = run_dir / CSV_PATH
    if not path.exists():
        return {}
    history: dict[str, Series] = {}
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            step = _number(row.get("step"))
            if step is None:
                continue
            for column, text in row.items():
                if column in ("epoch", "step") or text in (None, ""):
                    continue
                value = _number(text)
                if value is None:
                    continue
                series = history.setdefault(column.removesuffix("_step"), Series())
                series.steps.append(int(step))
                series.values.append(value)
    return history


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def finite(series: Series) -> tuple[list[int], list[float]]:
    """The series without its non-finite points (a diverged run ends in NaN or inf)."""
    points = [(s, v) for s, v in zip(series.steps, series.values) if math.isfinite(v)]
    return [s for s, _ in points], [v for _, v in points]
