"""The runs of a study folder as rows: varied values, setting, seed, outcome, files.

Everything comes from what the runs left behind (``metrics.json``, ``config.yaml``) and
the folder's ``index.json``. A folder of runs without an index (e.g. made by ``wandb
agent`` with ``--trainer.default_root_dir DIR/runs``) works too: the varied values are
then the config values that differ between the runs.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netscope.core.rundir import RunDir
from netscope.studies.expand import SEED, flatten, labels, setting, varying
from netscope.studies.index import Entry, StudyIndex, read_summary

#: Config keys that change from run to run without being part of the study.
BOOKKEEPING = ("trainer.default_root_dir", "trainer.logger", "trainer.callbacks", "run_name",
               "checkpoint.dirpath")


@dataclass
class Row:
    """One run of the study, as the report shows it."""

    label: str
    values: dict[str, Any]  # the varied values, by dotted name (the seed among them)
    setting: str  # the label of what the run's setting varies, without the seed
    seed: Any
    status: str
    reason: str | None
    summary: dict[str, Any]
    run_dir: Path | None
    elapsed_s: float | None
    threads: int | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def findings(self) -> list[dict[str, Any]] | None:
        """The doctor's findings, or ``None`` when the doctor did not run (no key)."""
        findings = self.summary.get("findings")
        return findings if isinstance(findings, list) else None


def read_rows(folder: Path, index: StudyIndex) -> tuple[list[Row], list[str]]:
    """The study's rows and the dotted names of what varies between its settings."""
    if index.entries:
        return rows_from_index(folder, index)
    return rows_from_run_dirs(folder)


def rows_from_index(folder: Path, index: StudyIndex) -> tuple[list[Row], list[str]]:
    """One row per combination of the latest expansion, varied values from the index."""
    entries = index.ordered()
    names = varying([entry.values for entry in entries])
    settings = setting_labels([entry.values for entry in entries], index.study or folder.name)
    return [_row(folder, entry, names, name) for entry, name in zip(entries, settings)], names


def setting_labels(combos: list[dict[str, Any]], fallback: str) -> list[str]:
    """Per combination, the label of its setting: its varied values without the seed."""
    return labels([setting(combo) for combo in combos], fallback)


def _row(folder: Path, entry: Entry, names: list[str], setting_label: str) -> Row:
    flat = flatten(entry.values)
    run_dir = folder / entry.run_dir if entry.run_dir else None
    config = read_config(run_dir)
    return Row(label=entry.label, values={n: flat.get(n) for n in names}, setting=setting_label,
               seed=flat.get(SEED, config.get(SEED)), status=entry.status, reason=entry.reason,
               summary=read_summary(run_dir) if run_dir else {}, run_dir=run_dir,
               elapsed_s=entry.elapsed_s, threads=entry.threads, config=config)


def rows_from_run_dirs(folder: Path) -> tuple[list[Row], list[str]]:
    """Rows for every run directory below ``folder`` (``runs/*`` or ``*``)."""
    run_dirs = sorted({p.parent for p in folder.glob("*/metrics.json")}
                      | {p.parent for p in folder.glob("runs/*/metrics.json")})
    configs = [read_config(run_dir) for run_dir in run_dirs]
    shared = set.intersection(*(set(config) for config in configs)) if configs else set()
    names = [n for n in varying(configs) if n in shared and not n.startswith(BOOKKEEPING)]
    values = [{n: config.get(n) for n in names} for config in configs]
    settings = setting_labels(values, folder.name)
    rows = []
    for run_dir, config, value, setting_label in zip(run_dirs, configs, values, settings):
        summary = read_summary(run_dir)
        rows.append(Row(label=run_dir.name, values=value, setting=setting_label, seed=config.get(SEED),
                        status=summary.get("status", "failed"), reason=summary.get("reason"),
                        summary=summary, run_dir=run_dir, elapsed_s=None, config=config))
    return rows, names


def read_config(run_dir: Path | None) -> dict[str, Any]:
    """A run's resolved ``config.yaml``, flattened to dotted names (lists kept whole)."""
    config = RunDir(run_dir).config() if run_dir is not None else None
    return flatten(config) if config else {}


def cell(value: Any) -> Any:
    """A varied value as a CSV cell: lists and mappings as JSON."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value
