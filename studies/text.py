"""How numbers and values read in the study's console lines and report."""

import json
import math
from typing import Any

from netscope.studies.expand import label_part


def format_seconds(seconds: float) -> str:
    """``42.0 s`` or ``12:05`` (minutes:seconds)."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def short(value: Any) -> str:
    """A value as a table shows it: class paths as class names, long equal lists folded."""
    if isinstance(value, list) and len(value) > 4 and len({json.dumps(v) for v in value}) == 1:
        return f"{len(value)} x {value[0]}"
    if isinstance(value, str):
        return label_part("", value)
    return "" if value is None else str(value)


def percent(value: Any) -> str:
    """An accuracy as a percentage with two decimals (empty when absent)."""
    return f"{100 * value:.2f}" if _real(value) else ""


def number(value: Any) -> str:
    """A loss with four decimals (empty when absent)."""
    return f"{value:.4f}" if _real(value) else ""


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
