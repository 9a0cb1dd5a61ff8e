"""Studies: compare configurations the way the course's case studies did, done right.

A study is a Weights & Biases sweep file (``configs/studies/*.yaml``): it runs online with
``wandb sweep`` + ``wandb agent``, or locally with ``python -m studies run``, which runs
each combination (each setting once per seed) through its own ``main.py`` process, up to
``--jobs`` at once, skips those already done, and writes a report that aggregates the
seeds of each setting and claims only the differences a test supports (``report.csv``,
``runs.csv``, ``report.md``, figures).
"""

from netscope.studies.expand import build_command, expand
from netscope.studies.report import write_report
from netscope.studies.runner import run_study
from netscope.studies.spec import Study, load_study, sweep_config_problems

__all__ = ["Study", "build_command", "expand", "load_study", "run_study", "sweep_config_problems",
           "write_report"]
