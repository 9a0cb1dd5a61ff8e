"""``report.md``: the study's setup, one table row per run, notes and figures."""

import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from studies.expand import label_part
from studies.index import StudyIndex
from studies.runner import format_seconds

if TYPE_CHECKING:
    from studies.report import Row

#: Settings stated in the setup section when every run shares them (label per dotted key).
SETUP_KEYS = {
    "data.class_path": "data",
    "data.init_args.image_size": "image size",
    "data.init_args.batch_size": "batch size",
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
    "optimizer.class_path": "optimizer",
    "optimizer.init_args.lr": "learning rate",
    "optimizer.init_args.momentum": "momentum",
    "lr_scheduler.class_path": "LR schedule",
    "trainer.max_epochs": "epochs",
    "trainer.limit_train_batches": "training batches per epoch",
    "trainer.precision": "precision",
    "seed_everything": "seed",
}


def markdown(study: str, index: StudyIndex, rows: list["Row"], names: list[str],
             figures: dict[str, Path | None], folder: Path) -> str:
    """The whole ``report.md``."""
    lines = [f"# Study: {study}", ""]
    description = _description(index.source)
    if description:
        lines += [description, ""]
    if index.source:
        lines += [f"Study file: `{index.source}`. Rebuild this report with "
                  f"`python -m studies report {folder}`.", ""]
    lines += ["## Setup", "", *_setup(rows, names), ""]
    lines += ["## Runs", "", *_table(rows, names), ""]
    notes = _notes(rows)
    if notes:
        lines += ["## Notes", "", *notes, ""]
    lines += ["## Figures", "", *_figures(figures, folder), ""]
    return "\n".join(lines)


def short(value: Any) -> str:
    """A value as a table shows it: class paths as class names, long equal lists folded."""
    if isinstance(value, list) and len(value) > 4 and len({json.dumps(v) for v in value}) == 1:
        return f"{len(value)} x {value[0]}"
    if isinstance(value, str):
        return label_part("", value)
    return "" if value is None else str(value)


def _description(source: str) -> str:
    try:
        return str((yaml.safe_load(Path(source).read_text()) or {}).get("description") or "").strip()
    except (OSError, yaml.YAMLError, AttributeError):
        return ""


def _setup(rows: list["Row"], names: list[str]) -> list[str]:
    configs = [row.config for row in rows if row.config]
    lines = []
    for key, label in SETUP_KEYS.items():
        values = {json.dumps(c.get(key), sort_keys=True, default=str) for c in configs if key in c}
        if len(values) == 1 and not any(n == key or n.startswith(key + ".") for n in names):
            value = configs[0].get(key) if key in configs[0] else next(c[key] for c in configs if key in c)
            if value is not None:
                lines.append(f"- {label}: `{short(value)}`")
    if names:
        lines.append("- varied: " + ", ".join(f"`{n}`" for n in names))
    times = [row.elapsed_s for row in rows if row.elapsed_s is not None]
    if times:
        lines.append(f"- wall time: {format_seconds(sum(times))} for {len(times)} runs, one after "
                     f"another (each run's process: start-up, training, test; longest "
                     f"{format_seconds(max(times))})")
    return lines


def _table(rows: list["Row"], names: list[str]) -> list[str]:
    header = ["run", *names, "status", "val/acc %", "test/acc %", "train/loss", "val/loss",
              "wall time", "init_checksum"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        s = row.summary
        cells = [row.label, *[short(row.values.get(n)) for n in names], row.status,
                 _percent(s.get("val/acc")), _percent(s.get("test/acc")),
                 _number(s.get("train/loss")), _number(s.get("val/loss")),
                 format_seconds(row.elapsed_s if row.elapsed_s is not None else s.get("wall_time_s", 0.0)),
                 f"`{s['init_checksum']}`" if s.get("init_checksum") else ""]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return lines


def _notes(rows: list["Row"]) -> list[str]:
    notes = [f"- `{row.label}` {row.status}: {row.reason or 'no reason recorded'}"
             for row in rows if row.status != "completed"]
    groups: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row.summary.get("init_checksum"):
            groups[row.summary["init_checksum"]].append(row.label)
    if len(rows) > 1 and groups:
        if len(groups) == 1 and len(next(iter(groups.values()))) == len(rows):
            notes.append("- Every run started from the same initial weights (one `init_checksum`).")
        else:
            shared = [labels for labels in groups.values() if len(labels) > 1]
            notes += [f"- Same initial weights (`init_checksum`): {', '.join(labels)}." for labels in shared]
            if not shared:
                notes.append("- Every run started from different initial weights.")
    return notes


def _figures(figures: dict[str, Path | None], folder: Path) -> list[str]:
    captions = {
        "curves": ("Training loss and validation accuracy, all runs",
                   "No loss or accuracy history was found (no `csv/metrics.csv` in the runs)."),
        "gradients": ("Gradient norm per layer and run (dashed: all parameters together)",
                      "No gradient norms were logged: the runs had no `grad_norm/*` metrics "
                      "(turn on the gradient-norm diagnostics)."),
        "activations": ("Saturated (solid) or dead (dashed) fraction of units per layer and run",
                        "No activation statistics were logged: the runs had no `act_saturated/*` "
                        "or `act_dead/*` metrics (turn on the activation diagnostics)."),
    }
    lines = []
    for key, (caption, missing) in captions.items():
        path = figures.get(key)
        lines += [f"![{caption}]({path.relative_to(folder)})" if path else missing, ""]
    return lines


def _percent(value: Any) -> str:
    return f"{100 * value:.2f}" if isinstance(value, (int, float)) else ""


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else ""
