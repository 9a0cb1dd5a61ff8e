"""The doctor's reading of curvature and gradient noise (``callbacks.Curvature``'s scalars).

- ``lr_too_high`` from the sharpness: above ``sharpness_overshoot`` x the stability limit
  for ``patience`` measurements the step overshoots along the sharpest direction; the
  update-ratio rule's message names the curvature too when it was measured.
- ``edge_of_stability`` (info): the sharpness hovers within ``edge_band`` of the limit,
  where gradient descent normally trains (Cohen et al. 2021): healthy, and it says why a
  larger learning rate would not simply train faster.
- ``batch_size_small`` / ``batch_size_large`` (info): the batch ``batch_factor`` x below or
  above the gradient noise scale for ``noise_patience`` measurements (McCandlish et al. 2018).
"""

import statistics

from netscope.core.curvature import BATCH, NOISE, ratios
from netscope.core.history import History
from netscope.doctor.findings import Finding
from netscope.doctor.thresholds import Thresholds



def stable_rate(history: History, ratio: float) -> str:
    """``η ≤ 0.0049`` (the current learning rate / ``ratio``), or ``a learning rate 2.1x
    smaller`` when the rate was not logged as one ``lr``."""
    lr = history.last("lr")
    if lr:
        return f"η ≤ {lr / ratio:.2g}"
    return f"a learning rate {ratio:.1f}x smaller"


def explain(history: History, t: Thresholds) -> tuple[str, dict] | None:
    """The curvature's part of a learning-rate finding, when it was measured: a clause and
    its evidence."""
    measured = ratios(history)
    if not measured:
        return None
    _, sharpness, limit, ratio = measured[-1]
    evidence = {"sharpness": sharpness, "sharpness_limit": limit, "sharpness_over_limit": ratio}
    if ratio > 1 + t.edge_band:
        clause = (f"sharpness {sharpness:.3g} is {ratio:.1f}x the stability limit {limit:.3g}: "
                  f"the step overshoots along the sharpest direction; at this curvature "
                  f"{stable_rate(history, ratio)} is stable")
        return clause, evidence
    clause = (f"the sharpness {sharpness:.3g} is within its stability limit {limit:.3g} "
              f"({ratio:.2f}x), so the steps are large but not unstable")
    return clause, evidence


def unstable_since(history: History, step: int, t: Thresholds) -> tuple[float, float] | None:
    """The median sharpness / limit measured after ``step`` when the steps were unstable
    then: the median at the edge of stability or past it (>= 1 - ``edge_band``) and at least
    one measurement clearly past it (> 1 + ``edge_band``). Gradient descent at the edge
    hovers within a few percent of the limit (Cohen et al. 2021); a run whose sharpness
    swings past it oscillates. ``(median, largest)`` ratio, or ``None`` when not so or not
    measured."""
    since = [ratio for s, *_, ratio in ratios(history) if s > step]
    if len(since) < t.patience:
        return None
    median = statistics.median(since)
    if median >= 1 - t.edge_band and max(since) > 1 + t.edge_band:
        return median, max(since)
    return None


def loss_rose(history: History, since: int, margin: float = 0.5) -> bool:
    """Whether the training loss logged from ``since`` on averages more than ``margin``
    above the same number of values logged before it: an overshooting step shows as a
    rising loss (a mean over logs, as one minibatch's loss is noisy). A loss that keeps
    falling while the measured sharpness is far past 2/η says the fixed batch's sharpness
    overstates the whole loss's (a small batch's top eigenvalue is biased upward), not that
    training is unstable: the 30-layer Kaiming MLP of the depth study, at batch 64, measured
    3-9x its limit while it trained to 95%."""
    steps, losses = history.series("train/loss")
    during = [v for s, v in zip(steps, losses) if s >= since]
    before = [v for s, v in zip(steps, losses) if s < since][-len(during):]
    return bool(before and during
                and statistics.mean(during) > (1 + margin) * statistics.mean(before))


def sharpness(history: History, context, t: Thresholds, step: int) -> list[Finding]:
    """An overshooting sharpness (``lr_too_high``), or one at the edge of stability (info)."""
    measured = ratios(history)[-t.patience:]
    if len(measured) < t.patience:
        return []
    values = [ratio for *_, ratio in measured]
    _, last_sharpness, limit, ratio = measured[-1]
    evidence = {"sharpness": [m[1] for m in measured], "sharpness_limit": limit,
                "sharpness_over_limit": values}
    if min(values) > t.sharpness_overshoot and loss_rose(history, measured[0][0]):
        clause, _ = explain(history, t)
        return [Finding("lr_too_high", "warning", "model", step,
                        f"{clause}; try {stable_rate(history, ratio)} or smaller", evidence)]
    if all(abs(v - 1) <= t.edge_band for v in values) and statistics.median(values) >= 0.9:
        # at the limit, not on the way to it (progressive sharpening passes 0.7x first)
        return [Finding(
            "edge_of_stability", "info", "model", step,
            f"the sharpness {last_sharpness:.3g} hovers at the stability limit {limit:.3g} "
            f"({statistics.median(values):.2f}x over the last {len(values)} measurements): "
            f"training sits at the edge of stability, where gradient descent normally trains "
            f"(Cohen et al. 2021); healthy: the learning rate, not the data, caps the curvature, "
            f"so a larger one would train in a flatter region, not simply faster", evidence)]
    return []


def batch_size(history: History, context, t: Thresholds, step: int) -> list[Finding]:
    """Batch-size advice where the noise scale is far from the batch for many measurements."""
    steps, noise = history.series(NOISE)
    batches = dict(zip(*history.series(BATCH)))
    pairs = [(n, batches[s]) for s, n in zip(steps, noise) if s in batches and n > 0]
    pairs = pairs[-t.noise_patience:]
    if len(pairs) < t.noise_patience:
        return []
    factors = [n / b for n, b in pairs]
    noise_now, batch = pairs[-1]
    evidence = {"noise_scale": [n for n, _ in pairs], "batch_size": batch,
                "threshold": t.batch_factor}
    if min(factors) >= t.batch_factor:
        return [Finding(
            "batch_size_small", "info", "model", step,
            f"the batch of {batch:.0f} is {noise_now / batch:.0f}x below the gradient noise "
            f"scale {noise_now:.3g}: each step averages away little of the gradient's noise; a "
            f"batch up to about {noise_now:.2g} (with the learning rate scaled up with it) "
            f"would need far fewer steps for nearly the same number of images (McCandlish et "
            f"al. 2018)", evidence)]
    if max(factors) <= 1 / t.batch_factor:
        return [Finding(
            "batch_size_large", "info", "model", step,
            f"the batch of {batch:.0f} is {batch / noise_now:.0f}x above the gradient noise "
            f"scale {noise_now:.3g}: beyond it a larger batch buys almost no fewer steps, so most "
            f"of each batch's images are spent for little; a batch near {noise_now:.2g} reaches "
            f"the same loss on far fewer images (McCandlish et al. 2018)", evidence)]
    return []
