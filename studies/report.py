"""The study report: ``report.csv``, ``report.md`` and the figures, from a study folder.

Everything comes from what the runs left behind (``metrics.json``, ``config.yaml``,
``csv/metrics.csv``) and the folder's ``index.json``, so ``python -m studies report DIR``
rebuilds it at any time. A folder of runs without an index (e.g. made by ``wandb agent``
with ``--trainer.default_root_dir DIR/runs``) works too: the varied values are then the
config values that differ between the runs.
"""

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.errors import UserError
from studies.expand import leaves, varying
from studies.figures import RunCurves, activation_fractions, gradient_norms, training_curves
from studies.history import read_history
from studies.index import Entry, StudyIndex, read_summary
from studies.report_text import markdown

METRICS = ("val/acc", "test/acc", "train/loss", "val/loss")
#: Config keys that change from run to run without being part of the study.
BOOKKEEPING = ("trainer.default_root_dir", "trainer.logger", "trainer.callbacks", "run_name",
               "checkpoint.dirpath")


@dataclass
class Row:
    """One run of the study, as the report shows it."""

    label: str
    values: dict[str, Any]  # the varied values, by dotted name
    status: str
    reason: str | None
    summary: dict[str, Any]
    run_dir: Path | None
    elapsed_s: float | None
    config: dict[str, Any] = field(default_factory=dict)


def write_report(folder: Path) -> Path:
    """Write ``report.csv``, ``report.md`` and the PNG figures into ``folder``; return the
    path of ``report.md``."""
    folder = Path(folder)
    index = StudyIndex.load(folder)
    rows, names = (rows_from_index(folder, index) if index.entries else rows_from_run_dirs(folder))
    if not rows:
        raise UserError(f"{folder} holds no study runs (no index.json and no run directories "
                        "with metrics.json): pass the folder given to `python -m studies run --out`.")
    study = index.study or folder.name
    runs = [RunCurves(row.label, row.status, read_history(row.run_dir) if row.run_dir else {})
            for row in rows]
    figures = {
        "curves": training_curves(runs, folder / "curves.png",
                                  f"{study}: training loss and validation accuracy"),
        "gradients": gradient_norms(runs, folder / "grad_norms.png",
                                    f"{study}: gradient norm per layer"),
        "activations": activation_fractions(runs, folder / "activations.png",
                                            f"{study}: saturated or dead units per layer"),
    }
    for name in ("curves.png", "grad_norms.png", "activations.png"):
        if folder / name not in figures.values() and (folder / name).exists():
            (folder / name).unlink()  # from an earlier report; its data is gone now
    write_csv(folder / "report.csv", rows, names)
    path = folder / "report.md"
    path.write_text(markdown(study, index, rows, names, figures, folder))
    return path


def rows_from_index(folder: Path, index: StudyIndex) -> tuple[list[Row], list[str]]:
    """One row per combination of the latest expansion, varied values from the index."""
    entries = index.ordered()
    names = varying([entry.values for entry in entries])
    return [_row(folder, entry, names) for entry in entries], names


def _row(folder: Path, entry: Entry, names: list[str]) -> Row:
    flat: dict[str, Any] = {}
    for name, value in entry.values.items():
        flat |= leaves(value, name)
    run_dir = folder / entry.run_dir if entry.run_dir else None
    return Row(label=entry.label, values={n: flat.get(n) for n in names}, status=entry.status,
               reason=entry.reason, summary=read_summary(run_dir) if run_dir else {},
               run_dir=run_dir, elapsed_s=entry.elapsed_s, config=_config(run_dir))


def rows_from_run_dirs(folder: Path) -> tuple[list[Row], list[str]]:
    """Rows for every run directory below ``folder`` (``runs/*`` or ``*``)."""
    run_dirs = sorted({p.parent for p in folder.glob("*/metrics.json")}
                      | {p.parent for p in folder.glob("runs/*/metrics.json")})
    configs = [_config(run_dir) for run_dir in run_dirs]
    shared = set.intersection(*(set(config) for config in configs)) if configs else set()
    names = [n for n in varying(configs) if n in shared and not n.startswith(BOOKKEEPING)]
    rows = []
    for run_dir, config in zip(run_dirs, configs):
        summary = read_summary(run_dir)
        rows.append(Row(label=run_dir.name, values={n: config.get(n) for n in names},
                        status=summary.get("status", "failed"), reason=summary.get("reason"),
                        summary=summary, run_dir=run_dir, elapsed_s=None, config=config))
    return rows, names


def _config(run_dir: Path | None) -> dict[str, Any]:
    """A run's resolved ``config.yaml``, flattened to dotted names (lists kept whole)."""
    if run_dir is None or not (run_dir / "config.yaml").exists():
        return {}
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except yaml.YAMLError:
        return {}
    flat: dict[str, Any] = {}
    for key, value in config.items():
        flat |= leaves(value, key)
    return flat


def write_csv(path: Path, rows: list[Row], names: list[str]) -> None:
    """``report.csv``: one row per run, raw numbers."""
    header = ["run", *names, "status", "reason", *METRICS, "wall_time_s", "fit_time_s",
              "epoch", "global_step", "init_checksum", "run_dir"]
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for row in rows:
            s = row.summary
            writer.writerow([
                row.label, *[json.dumps(row.values[n]) if isinstance(row.values[n], (list, dict))
                             else row.values[n] for n in names],
                row.status, row.reason or "", *[s.get(m, "") for m in METRICS],
                row.elapsed_s if row.elapsed_s is not None else "", s.get("wall_time_s", ""),
                s.get("epoch", ""), s.get("global_step", ""), s.get("init_checksum", ""),
                str(row.run_dir or ""),
            ])
