"""What the report says about single runs, from their own files: why a run fell behind
(its findings), which runs share initial weights (their ``init_checksum``), and why a
figure has no data (the real cause, not a guess)."""

import json
from collections import defaultdict

from netscope.core.rundir import RunDir
from netscope.studies.rows import Row
from netscope.studies.stats import Comparison, Setting

#: Per figure: the metric prefixes it draws and the callback that logs them.
DIAGNOSTICS = {
    "gradients": (("grad_norm/",), "netscope.callbacks.GradientNorms", "gradient norms"),
    "activations": (("act_saturated/", "act_dead/"), "netscope.callbacks.ActivationStatistics",
                    "saturated or dead fractions"),
}


def behind(rows: list[Row], order: list[Setting], comparisons: list[Comparison]) -> list[str]:
    """Each run that failed, stalled, lagged or has an error finding (e.g. ``symmetry``),
    explained in the words of its findings."""
    best = order[0].label if order else None
    lagging = {c.second: c for c in comparisons if c.first == best and c.verdict == "better"}
    notes = []
    for row in rows:
        stalled = [f for f in row.findings or [] if f.get("code") == "not_learning"]
        if row.status not in ("completed",):
            why = f"{row.status}: {row.reason or 'no reason recorded'}"
        elif stalled and "cleared_by_step" not in (stalled[0].get("evidence") or {}):
            why = "stalled (the doctor found it not learning)"
        elif row.setting in lagging:
            c = lagging[row.setting]
            why = f"its setting lags {best} (p = {c.p:.3g}, Holm-adjusted {c.p_holm:.3g})"
        elif any(f.get("severity") == "error" for f in row.findings or []):
            why = "cannot train as set up (the doctor found an error)"  # e.g. symmetry: no test needed
        else:
            continue
        if row.findings is None:
            words = "the doctor did not run (no `findings` in its metrics.json), so there is no diagnosis"
        elif not row.findings:
            words = "the doctor raised no finding"
        else:
            words = "; ".join(f"{f.get('code')} at {f.get('where')} (step {f.get('step')}): "
                              f"{f.get('message', '')}".rstrip(": ") for f in row.findings)
        notes.append(f"- `{row.label}` {why}. Doctor: {words}")
    return notes


def checksums(rows: list[Row]) -> list[str]:
    """What the init_checksums say, and only that: runs without one are named as such."""
    groups: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row.summary.get("init_checksum"):
            groups[row.summary["init_checksum"]].append(row.label)
    without = [row.label for row in rows if not row.summary.get("init_checksum")]
    notes = []
    if len(groups) == 1 and len(next(iter(groups.values()))) > 1:
        notes.append(f"- Every run with an `init_checksum` started from the same initial weights "
                     f"({len(next(iter(groups.values())))} runs).")
    elif groups:
        shared = [labels for labels in groups.values() if len(labels) > 1]
        notes += [f"- Same initial weights (`init_checksum`): {', '.join(labels)}." for labels in shared]
        if not shared:
            notes.append(f"- The {sum(map(len, groups.values()))} runs with an `init_checksum` all "
                         f"started from different initial weights.")
    if without:
        notes.append(f"- No `init_checksum` (the run ended before training started): {', '.join(without)}.")
    return notes


def doctor_absent(rows: list[Row]) -> list[str]:
    missing = [row.label for row in rows if row.findings is None and row.status != "failed"]
    if not missing:
        return []
    which = "any run" if len(missing) == len(rows) else ", ".join(missing)
    return [f"- The doctor did not run for {which} (no `findings` in metrics.json): "
            "no finding here means not checked, not healthy."]


def missing(figure: str, rows: list[Row]) -> str:
    """Why a figure has no data, from the runs' own files: the real cause first."""
    if not any(row.run_dir and RunDir(row.run_dir).has_history() for row in rows):
        return (f"No {figure} figure: no run has a scalar history (`csv/metrics.csv`); "
                "the runs failed early or ran without the CSV logger.")
    if figure == "curves":
        return "No curves: the runs logged no `train/loss` or `val/acc`."
    prefixes, callback, what = DIAGNOSTICS[figure]
    configs = [row.config for row in rows if row.config]
    if configs and not any(callback in json.dumps(c.get("trainer.callbacks")) for c in configs):
        return f"No {what}: the runs had no `{callback}` among `trainer.callbacks`."
    steps = [row.summary.get("global_step") for row in rows if isinstance(row.summary.get("global_step"), int)]
    every = max((c.get("trainer.log_every_n_steps") or 50 for c in configs), default=50)
    if steps and max(steps) < every:
        return (f"No {what}: the runs took at most {max(steps)} optimizer steps, fewer than "
                f"`trainer.log_every_n_steps` ({every}), so no logging step came; lower it, e.g. "
                f"`-- --trainer.log_every_n_steps {max(1, max(steps) // 4)}`.")
    if figure == "activations":
        return ("No saturated or dead fractions: none of the runs' activation layers saturates "
                "(sigmoid, tanh) or outputs exact zeros (ReLU), the only kinds these are logged for.")
    return f"No {what}: the runs' `csv/metrics.csv` holds no `{prefixes[0]}*` values."
