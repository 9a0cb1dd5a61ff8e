"""Settings over seeds: mean and spread of the final metrics, and which differences are real.

A study answers "which setting is better" only where the difference stands out of the
seed-to-seed noise. Every pair of settings is compared with Welch's t-test (unequal
variances: one setting can be much noisier than another) on the per-seed final values of
the study's metric; the p-values are Holm-corrected over all pairs, so that testing many
pairs does not turn noise into claims. A pair whose corrected p-value is not below
:data:`ALPHA` is indistinguishable at this number of seeds.
"""

import math
import statistics
import warnings
from dataclasses import dataclass
from typing import Any, Literal

from scipy import stats

from netscope.studies.expand import SEED
from netscope.studies.rows import Row

#: Final metrics aggregated per setting.
METRICS = ("val/acc", "test/acc", "train/loss", "val/loss")
#: ... and, where runs measured them (``callbacks.Curvature``), where the sharpness settled
#: against its stability limit and the last gradient noise scale.
CURVATURE_METRICS = ("sharpness_over_limit", "noise_scale")


def metrics_of(rows: list[Row]) -> tuple[str, ...]:
    """:data:`METRICS`, and the curvature metrics some of ``rows`` have."""
    return METRICS + tuple(m for m in CURVATURE_METRICS if any(m in r.summary for r in rows))
#: Significance level of each claimed difference (after Holm's correction).
ALPHA = 0.05
#: Outcomes whose final metrics count (a diverged run's numbers are a result too).
COUNTED = ("completed", "diverged")
Verdict = Literal["better", "indistinguishable", "untestable"]


@dataclass(frozen=True)
class Spread:
    """A metric over seeds: count, mean, sample standard deviation, min and max."""

    n: int
    mean: float
    std: float
    min: float
    max: float


@dataclass
class Setting:
    """The runs of one setting: the same values, one run per seed."""

    label: str
    values: dict[str, Any]
    rows: list[Row]

    def final(self, metric: str) -> list[float]:
        """The finite final values of ``metric``, one per counted run."""
        values = [row.summary.get(metric) for row in self.rows if row.status in COUNTED]
        return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]

    def spread(self, metric: str) -> Spread | None:
        """Mean and spread of ``metric`` over seeds (``None`` when no run has it)."""
        values = self.final(metric)
        if not values:
            return None
        std = statistics.stdev(values) if len(values) > 1 else math.nan
        return Spread(len(values), statistics.fmean(values), std, min(values), max(values))

    def finding_counts(self) -> dict[str, int] | None:
        """Per finding code, how many of the setting's runs raised it (an ``info`` only,
        e.g. an adaptive optimizer's large first step, counts as ``code (info)``); ``None``
        when the doctor ran on none of them."""
        if all(row.findings is None for row in self.rows):
            return None
        counts: dict[str, int] = {}
        for row in self.rows:
            serious = {f.get("code", "?") for f in row.findings or [] if f.get("severity") != "info"}
            labels = (code if code in serious else f"{code} (info)"
                      for code in (f.get("code", "?") for f in row.findings or []))
            for label in dict.fromkeys(labels):
                counts[label] = counts.get(label, 0) + 1
        return counts


@dataclass(frozen=True)
class Comparison:
    """Two settings compared on one metric; ``first`` is the one with the better mean."""

    first: str
    second: str
    metric: str
    difference: float  # mean of first minus mean of second
    t: float
    p: float
    p_holm: float
    verdict: Verdict
    note: str = ""


def group(rows: list[Row]) -> list[Setting]:
    """The rows grouped by setting, in the order the settings first appear."""
    settings: dict[str, Setting] = {}
    for row in rows:
        values = {name: value for name, value in row.values.items() if name != SEED}
        settings.setdefault(row.setting, Setting(row.setting, values, [])).rows.append(row)
    return list(settings.values())


def ranked(settings: list[Setting], metric: str, goal: str) -> list[Setting]:
    """The settings that have ``metric``, best mean first."""
    scored = [s for s in settings if s.spread(metric)]
    return sorted(scored, key=lambda s: s.spread(metric).mean, reverse=goal == "maximize")


def compare(settings: list[Setting], metric: str, goal: str = "maximize") -> list[Comparison]:
    """Every pair of settings on ``metric``, best-ranked pairs first, Holm-corrected."""
    order = ranked(settings, metric, goal)
    raw = []
    for i, first in enumerate(order):
        for second in order[i + 1:]:
            raw.append((first, second, *welch(first.final(metric), second.final(metric))))
    testable = sorted((p, n) for n, (*_, p, _) in enumerate(raw) if not math.isnan(p))
    holm = [math.nan] * len(raw)
    running = 0.0
    for rank, (p, n) in enumerate(testable):  # Holm: step down, never below an earlier one
        running = max(running, min(1.0, (len(testable) - rank) * p))
        holm[n] = running
    result = []
    for (first, second, t, p, note), p_holm in zip(raw, holm):
        verdict: Verdict = ("untestable" if math.isnan(p) else
                            "better" if p_holm < ALPHA else "indistinguishable")
        difference = first.spread(metric).mean - second.spread(metric).mean
        result.append(Comparison(first.label, second.label, metric, difference, t, p, p_holm,
                                 verdict, note))
    return result


def welch(a: list[float], b: list[float]) -> tuple[float, float, str]:
    """Welch's t statistic and two-sided p-value of ``a`` against ``b``, and a note where
    the test cannot say anything (fewer than two seeds) or needs none (no spread)."""
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan, "needs at least 2 seeds per setting"
    if statistics.pstdev(a) == 0 and statistics.pstdev(b) == 0:
        # Every seed gave the same value on both sides: the seeds do not matter here.
        same = statistics.fmean(a) == statistics.fmean(b)
        return (0.0, 1.0, "every seed gave the same value") if same else (
            math.inf, 0.0, "every seed gave the same value in each setting")
    with warnings.catch_warnings():
        # One setting's seeds all equal (e.g. a zero init stuck at chance) is a valid input;
        # SciPy's float check for it warns of "catastrophic cancellation" without cause.
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.pvalue), ""


def best_group(comparisons: list[Comparison], order: list[Setting]) -> list[str]:
    """The best setting and those the test cannot tell from it."""
    if not order:
        return []
    best = order[0].label
    tied = [c.second for c in comparisons if c.first == best and c.verdict != "better"]
    return [best, *tied]
