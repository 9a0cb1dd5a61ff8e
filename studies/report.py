"""The study report: ``report.csv`` (one row per setting), ``runs.csv`` (one per run),
``report.md`` and the figures, from a study folder.

Everything comes from what the runs left behind (``metrics.json``, ``config.yaml``,
``csv/metrics.csv``, read through :mod:`core.history`) and the folder's ``index.json``,
so ``python -m studies report DIR`` rebuilds it at any time.
"""

import csv
from pathlib import Path

from netscope.core.errors import UserError
from netscope.core.rundir import RunDir
from netscope.figures.curvature import study_curvature_figure
from netscope.figures.study import Group, activation_figure, curves_figure, gradient_figure
from netscope.figures.style import save
from netscope.studies.expand import SEED
from netscope.studies.index import StudyIndex
from netscope.studies.report_text import Inputs, markdown
from netscope.studies.rows import Row, cell, read_rows
from netscope.studies.stats import Setting, compare, group, metrics_of, ranked

FIGURES = {"curves": "curves.png", "gradients": "grad_norms.png", "activations": "activations.png",
           "curvature": "curvature.png"}
#: What a study compares settings on when its file names no ``metric``.
DEFAULT_METRIC = {"name": "val/acc", "goal": "maximize"}


def write_report(folder: Path) -> Path:
    """Write ``report.csv``, ``runs.csv``, ``report.md`` and the PNG figures into
    ``folder``; return the path of ``report.md``."""
    folder = Path(folder)
    index = StudyIndex.load(folder)
    rows, names = read_rows(folder, index)
    if not rows:
        raise UserError(f"{folder} holds no study runs (no index.json and no run directories "
                        "with metrics.json): pass the folder given to `python -m studies run --out`.")
    study = index.study or folder.name
    metric = index.metric.get("name") or DEFAULT_METRIC["name"]
    goal = index.metric.get("goal") or ("maximize" if metric.endswith("acc") else "minimize")
    settings = group(rows)
    figures = draw_figures(study, settings, folder)
    write_settings_csv(folder / "report.csv", settings, [n for n in names if n != SEED])
    write_runs_csv(folder / "runs.csv", rows, names)
    inputs = Inputs(study=study, index=index, rows=rows, names=names, settings=settings,
                    metric=metric, goal=goal, comparisons=compare(settings, metric, goal),
                    order=ranked(settings, metric, goal), figures=figures, folder=folder)
    path = folder / "report.md"
    path.write_text(markdown(inputs))
    return path


def draw_figures(study: str, settings: list[Setting], folder: Path) -> dict[str, Path | None]:
    """The study's figures, drawn afresh (a figure whose data is gone is removed)."""
    groups = []
    for setting in settings:
        histories = [RunDir(row.run_dir).history() for row in setting.rows if row.run_dir]
        off = [row.status for row in setting.rows if row.status != "completed"]
        note = ", ".join(f"{off.count(s)} {s}" for s in dict.fromkeys(off))
        groups.append(Group(setting.label, [h for h in histories if h], note))
    drawn = {
        "curves": curves_figure(groups, f"{study}: training loss and validation accuracy"),
        "gradients": gradient_figure(groups, f"{study}: gradient norm per layer"),
        "activations": activation_figure(groups, f"{study}: saturated or dead units per layer"),
        "curvature": study_curvature_figure(groups, f"{study}: sharpness against its limit"),
    }
    paths: dict[str, Path | None] = {}
    for key, figure in drawn.items():
        path = folder / FIGURES[key]
        if figure is None:
            path.unlink(missing_ok=True)  # from an earlier report; its data is gone now
        paths[key] = save(figure, path) if figure is not None else None
    return paths


def write_settings_csv(path: Path, settings: list[Setting], names: list[str]) -> None:
    """``report.csv``: one row per setting, each final metric's mean, std, min and max
    over seeds, the number of seeds, and how many seeds raised each finding."""
    metrics = metrics_of([row for setting in settings for row in setting.rows])
    header = ["setting", *names, "runs", "seeds", *[f"{m}_{stat}" for m in metrics
                                                    for stat in ("mean", "std", "min", "max")],
              "findings"]
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for setting in settings:
            spreads = [setting.spread(m) for m in metrics]
            seeds = max((s.n for s in spreads if s), default=0)
            counts = setting.finding_counts()
            findings = ("" if counts is None else
                        "; ".join(f"{code} {n}/{len(setting.rows)}" for code, n in counts.items()))
            writer.writerow([
                setting.label, *[cell(setting.values.get(n)) for n in names], len(setting.rows), seeds,
                *[value for s in spreads for value in
                  ((s.mean, "" if s.std != s.std else s.std, s.min, s.max) if s else ("",) * 4)],
                findings,
            ])


def write_runs_csv(path: Path, rows: list[Row], names: list[str]) -> None:
    """``runs.csv``: one row per run, raw numbers."""
    metrics = metrics_of(rows)
    header = ["run", "setting", *names, "status", "reason", *metrics, "wall_time_s", "fit_time_s",
              "threads", "epoch", "global_step", "init_checksum", "findings", "run_dir"]
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for row in rows:
            s = row.summary
            writer.writerow([
                row.label, row.setting, *[cell(row.values.get(n)) for n in names],
                row.status, row.reason or "", *[s.get(m, "") for m in metrics],
                row.elapsed_s if row.elapsed_s is not None else "", s.get("wall_time_s", ""),
                row.threads or "", s.get("epoch", ""), s.get("global_step", ""),
                s.get("init_checksum", ""),
                "" if row.findings is None else " ".join(f.get("code", "?") for f in row.findings),
                str(row.run_dir or ""),
            ])
