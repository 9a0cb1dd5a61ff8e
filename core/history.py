"""A run's scalar history: one ``(steps, values)`` series per logged name.

This is the one reader of a run's data. During a fit, callbacks that need the values
logged so far (the doctor's rules) record them into a :class:`History`; after it, figures,
reports, studies and benchmarks read the same series back from ``csv/metrics.csv``
(through :meth:`core.rundir.RunDir.history`), which every run writes (Lightning's
CSVLogger: one column per metric, one sparse row per logging call; a metric logged per step and per epoch appears as ``<name>_step`` and
``<name>_epoch``, and is read under the plain name for the step values).
"""

import csv
import math
import os
from collections import defaultdict
from pathlib import Path


class History:
    """Scalars per name: ``series(name) -> (steps, values)``, in the order recorded."""

    def __init__(self) -> None:
        self.steps: dict[str, list[int]] = defaultdict(list)
        self.values: dict[str, list[float]] = defaultdict(list)

    def record(self, step: int, values: dict[str, float]) -> None:
        """Append one value per name at ``step``."""
        for name, value in values.items():
            self.steps[name].append(int(step))
            self.values[name].append(float(value))

    def names(self, prefix: str = "") -> list[str]:
        """Recorded names starting with ``prefix``, in the order first recorded."""
        return [name for name in self.values if name.startswith(prefix)]

    def series(self, name: str) -> tuple[list[int], list[float]]:
        """``(steps, values)`` of one name (empty lists when never recorded)."""
        return list(self.steps.get(name, [])), list(self.values.get(name, []))

    def last(self, name: str) -> float | None:
        """The latest value of ``name``, or ``None``."""
        values = self.values.get(name)
        return values[-1] if values else None

    def __contains__(self, name: str) -> bool:
        return bool(self.values.get(name))

    def __bool__(self) -> bool:
        return any(self.values.values())


def read_history(path: str | os.PathLike) -> History:
    """The history in the CSV file ``path`` (empty when there is none).

    Non-finite values are kept (a diverged run ends in NaN or inf); see :func:`finite`.
    """
    history = History()
    path = Path(path)
    if not path.exists():
        return history
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            step = _number(row.get("step"))
            if step is None:
                continue
            values = {}
            for column, text in row.items():
                if column in ("epoch", "step") or text in (None, ""):
                    continue
                value = _number(text)
                if value is not None:
                    values[column.removesuffix("_step")] = value
            history.record(int(step), values)
    return history


def finite(steps: list[int], values: list[float]) -> tuple[list[int], list[float]]:
    """The points whose value is finite."""
    points = [(s, v) for s, v in zip(steps, values) if math.isfinite(v)]
    return [s for s, _ in points], [v for _, v in points]


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
