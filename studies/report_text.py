"""``report.md``: the setup, one row per setting (mean ± std over seeds), the tested
differences, one row per run, notes that explain the runs that fell behind, and figures."""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from netscope.studies.curvature_text import curvature_section
from netscope.studies.expand import SEED
from netscope.studies.index import StudyIndex
from netscope.studies.notes import behind, checksums, doctor_absent, missing
from netscope.studies.rows import Row
from netscope.studies.stats import ALPHA, Comparison, Setting, Spread, best_group
from netscope.studies.text import format_seconds, number, percent, short

#: Settings stated in the setup section when every run shares them (label per dotted key).
SETUP_KEYS = {
    "data.class_path": "data",
    "data.init_args.image_size": "image size",
    "data.init_args.batch_size": "batch size",
    "data.init_args.train_size": "training images",
    "model.class_path": "model",
    "model.init_args.hidden_sizes": "hidden layer widths",
    "model.init_args.widths": "block widths",
    "model.init_args.depth": "convolutions per block",
    "model.init_args.stem_width": "stem width",
    "model.init_args.batch_norm": "batch norm",
    "model.init_args.activation": "activation",
    "model.init_args.negative_slope": "leaky ReLU slope",
    "model.init_args.init": "initialization",
    "model.init_args.init_scale": "initialization scale",
    "model.init_args.loss": "loss",
    "optimizer.class_path": "optimizer",
    "optimizer.init_args.lr": "learning rate",
    "optimizer.init_args.momentum": "momentum",
    "lr_scheduler.class_path": "LR schedule",
    "trainer.max_epochs": "epochs",
    "trainer.limit_train_batches": "training batches per epoch",
    "trainer.precision": "precision",
    "seed_everything": "seed",
}
@dataclass
class Inputs:
    """Everything the report states, gathered by :func:`studies.report.write_report`."""

    study: str
    index: StudyIndex
    rows: list[Row]
    names: list[str]
    settings: list[Setting]
    metric: str
    goal: str
    comparisons: list[Comparison]
    order: list[Setting]  # the settings with the metric, best mean first
    figures: dict[str, Path | None]
    folder: Path


def markdown(inputs: Inputs) -> str:
    """The whole ``report.md``."""
    lines = [f"# Study: {inputs.study}", ""]
    description = _description(inputs.index.source)
    if description:
        lines += [description, ""]
    if inputs.index.source:
        lines += [f"Study file: `{inputs.index.source}`. Rebuild this report with "
                  f"`python -m studies report {inputs.folder}`.", ""]
    lines += ["## Setup", "", *_setup(inputs), ""]
    lines += ["## Settings (mean ± std over seeds)", "", *_settings_table(inputs), ""]
    lines += ["## Which differences are real", "", *_verdicts(inputs), ""]
    lines += ["## Runs", "", *_runs_table(inputs), ""]
    curvature = curvature_section(inputs.settings)
    if curvature:
        lines += ["## Curvature and gradient noise", "", *curvature, ""]
    notes = _notes(inputs)
    if notes:
        lines += ["## Notes", "", *notes, ""]
    lines += ["## Figures", "", *_figures(inputs), ""]
    return "\n".join(lines)


def _description(source: str) -> str:
    try:
        return str((yaml.safe_load(Path(source).read_text()) or {}).get("description") or "").strip()
    except (OSError, yaml.YAMLError, AttributeError):
        return ""


def _setup(inputs: Inputs) -> list[str]:
    rows, names = inputs.rows, inputs.names
    configs = [row.config for row in rows if row.config]
    lines = []
    for key, label in SETUP_KEYS.items():
        values = {json.dumps(c.get(key), sort_keys=True, default=str) for c in configs if key in c}
        if len(values) == 1 and not any(n == key or n.startswith(key + ".") for n in names):
            value = next(c[key] for c in configs if key in c)
            if value is not None:
                lines.append(f"- {label}: `{short(value)}`")
    if names:
        lines.append("- varied: " + ", ".join(f"`{n}`" for n in names))
    seeds = sorted({str(row.seed) for row in rows if row.seed is not None})
    if seeds:
        lines.append(f"- seeds: {', '.join(seeds)} ({len(inputs.settings)} settings, "
                     f"{len(rows)} runs)")
    times = [row.elapsed_s for row in rows if row.elapsed_s is not None]
    sessions = [s for s in inputs.index.sessions if s.get("runs")]
    if times and sessions:
        ways = sorted({(s["jobs"], s["threads"]) for s in sessions})
        lines.append(
            f"- wall time: {format_seconds(sum(s['wall_s'] for s in sessions))} for "
            f"{sum(s['runs'] for s in sessions)} runs, "
            + " / ".join(f"{jobs} at a time with {threads} torch thread{'s' * (threads > 1)} each"
                         for jobs, threads in ways)
            + f" (each run's process, start-up to test: {format_seconds(min(times))} to "
              f"{format_seconds(max(times))})")
    elif times:  # a study folder from before the runner recorded its sessions
        lines.append(f"- run time: {format_seconds(sum(times))}, the {len(times)} runs' processes added up "
                     f"(each run's process, start-up to test: {format_seconds(min(times))} to "
                     f"{format_seconds(max(times))})")
    return lines


def _cell(spread: Spread | None, scale: float, digits: int) -> str:
    if spread is None:
        return ""
    std = "" if math.isnan(spread.std) else f" ± {scale * spread.std:.{digits}f}"
    return f"{scale * spread.mean:.{digits}f}{std}"


def _range(spread: Spread | None, scale: float, digits: int) -> str:
    return "" if spread is None else f"{scale * spread.min:.{digits}f} – {scale * spread.max:.{digits}f}"


def _findings_cell(setting: Setting) -> str:
    counts = setting.finding_counts()
    if counts is None:
        return "doctor did not run"
    if not counts:
        return "none"
    return ", ".join(f"{code} {n}/{len(setting.rows)}" for code, n in counts.items())


def _settings_table(inputs: Inputs) -> list[str]:
    names = [n for n in inputs.names if n != SEED]
    header = ["setting", *names, "seeds", "val/acc %", "val/acc range", "test/acc %",
              "train/loss", "val/loss", "findings (seeds)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for setting in inputs.settings:
        counted = setting.spread(inputs.metric)
        seeds = f"{counted.n if counted else 0}/{len(setting.rows)}"
        cells = [setting.label, *[short(setting.values.get(n)) for n in names], seeds,
                 _cell(setting.spread("val/acc"), 100, 2), _range(setting.spread("val/acc"), 100, 2),
                 _cell(setting.spread("test/acc"), 100, 2), _cell(setting.spread("train/loss"), 1, 4),
                 _cell(setting.spread("val/loss"), 1, 4), _findings_cell(setting)]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    lines += ["", "Seeds: runs whose final metric counts / runs of the setting. ± is the sample "
              "standard deviation over seeds; range is the lowest to the highest seed."]
    return lines


def _claim(c: Comparison, inputs: Inputs, seeds: int) -> str:
    scale, unit = (100, " points") if inputs.metric.endswith("acc") else (1, "")
    test = (f"Welch's t = {c.t:.2f}, p = {c.p:.3g}, Holm-adjusted p = {c.p_holm:.3g}"
            if math.isfinite(c.t) else f"p = {c.p:.3g}")
    note = f"; {c.note}" if c.note else ""
    if c.verdict == "better":
        better = "higher" if inputs.goal == "maximize" else "lower"
        return (f"- **{c.first}** beats **{c.second}**: {inputs.metric} {better} by "
                f"{abs(scale * c.difference):.2f}{unit} ({test}{note}).")
    if c.verdict == "indistinguishable":
        return (f"- {c.first} and {c.second} are indistinguishable at {seeds} seeds "
                f"(difference {scale * c.difference:+.2f}{unit}; {test}{note}).")
    return f"- {c.first} vs {c.second}: not tested ({c.note})."


def _verdicts(inputs: Inputs) -> list[str]:
    if len(inputs.order) < 2:
        return [f"Fewer than two settings have a final `{inputs.metric}`: nothing to compare."]
    seeds = min(s.spread(inputs.metric).n for s in inputs.order)
    if all(c.verdict == "untestable" for c in inputs.comparisons):
        return [f"Not tested: a test needs at least 2 seeds per setting, and these settings have "
                f"{seeds}. No setting is ranked above another; add seeds to the study "
                f"(`seed_everything: {{values: [0, 1, 2]}}`) to compare them."]
    pairs = len(inputs.comparisons)
    lines = [f"Each pair of settings is compared on the final `{inputs.metric}` of its seeds "
             f"(goal: {inputs.goal}) with Welch's two-sided t-test; the p-values are "
             f"Holm-corrected over the {pairs} pair{'s' * (pairs != 1)}, and a difference is "
             f"claimed only where the corrected p < {ALPHA}. Anything else is within the "
             f"seed-to-seed noise at this number of seeds.", ""]
    tied = best_group(inputs.comparisons, inputs.order)
    if len(tied) == 1:
        lines.append(f"Best: **{tied[0]}**, ahead of every other setting by the test.")
    else:
        lines.append(f"Best mean: {tied[0]}; the test cannot tell it from "
                     f"{', '.join(tied[1:])} at {seeds} seeds, so no winner among "
                     f"{', '.join(tied)} is claimed.")
    lines.append("")
    claims = [c for c in inputs.comparisons if c.verdict == "better"]
    others = [c for c in inputs.comparisons if c.verdict != "better"]
    lines += [_claim(c, inputs, seeds) for c in claims + others]
    return lines


def _runs_table(inputs: Inputs) -> list[str]:
    header = ["run", "setting", "seed", "status", "val/acc %", "test/acc %", "train/loss",
              "val/loss", "wall time", "init_checksum", "findings"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in inputs.rows:
        s = row.summary
        elapsed = row.elapsed_s if row.elapsed_s is not None else s.get("wall_time_s")
        findings = ("doctor did not run" if row.findings is None else
                    ", ".join(f"{f.get('code', '?')} @ {f.get('where', '?')}"
                              + (" (info)" if f.get("severity") == "info" else "") for f in row.findings)
                    or "none")
        cells = [row.label, row.setting, short(row.seed), row.status, percent(s.get("val/acc")),
                 percent(s.get("test/acc")), number(s.get("train/loss")), number(s.get("val/loss")),
                 format_seconds(elapsed) if isinstance(elapsed, (int, float)) else "",
                 f"`{s['init_checksum']}`" if s.get("init_checksum") else "", findings]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return lines


def _notes(inputs: Inputs) -> list[str]:
    return [*behind(inputs.rows, inputs.order, inputs.comparisons), *checksums(inputs.rows),
            *doctor_absent(inputs.rows)]


def _figures(inputs: Inputs) -> list[str]:
    captions = {
        "curves": "Training loss and validation accuracy per setting: mean over seeds (line), "
                  "min to max over seeds (band)",
        "gradients": "Gradient norm per layer and setting (dashed: all parameters together): "
                     "mean over seeds, band min to max",
        "activations": "Saturated (solid) or dead (dashed) fraction of units per layer and "
                       "setting: mean over seeds, band min to max",
    }
    if inputs.figures.get("curvature"):  # only where the runs measured it (Curvature is opt-in)
        captions["curvature"] = ("Sharpness / stability limit per setting (1: the edge of "
                                 "stability): mean over seeds, band min to max")
    lines = []
    for key, caption in captions.items():
        path = inputs.figures.get(key)
        lines += [f"![{caption}]({path.relative_to(inputs.folder)})" if path
                  else missing(key, inputs.rows), ""]
    return lines
