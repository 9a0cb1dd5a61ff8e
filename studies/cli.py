"""``python -m studies run STUDY [--out DIR] [--jobs N] [-- overrides]``, ``report DIR``, ``check STUDY...``."""

import argparse
import sys
from pathlib import Path

from netscope.core.errors import UserError
from netscope.studies.report import write_report
from netscope.studies.runner import default_threads, run_study
from netscope.studies.spec import load_study

#: Options the runner sets on every run itself.
RUNNER_OPTIONS = ("--trainer.default_root_dir", "--run_name")


def parser() -> argparse.ArgumentParser:
    """The command line: ``run``, ``report`` and ``check``."""
    top = argparse.ArgumentParser(
        prog="python -m studies",
        description="Run a study (a W&B sweep file) locally, each run its own process, and report it.",
        epilog="Overrides after `--` go to every run, e.g. "
               "`-- --data.init_args.data_dir ../shared/data/mnist`.")
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run every combination not done yet, then write the report")
    run.add_argument("study", type=Path, help="the study file, e.g. configs/studies/activations.yaml")
    run.add_argument("--out", type=Path, help="study folder (default: runs/studies/<study name>)")
    run.add_argument("--count", type=int, help="run at most this many combinations "
                     "(a random study needs this or `run_cap`)")
    run.add_argument("--dry-run", action="store_true", help="print the command lines, run nothing")
    run.add_argument("--jobs", type=int, default=1, help="run up to N runs at once, each its own "
                     "process (default 1)")
    run.add_argument("--threads-per-run", type=int, help="torch threads of each run (default: "
                     f"the {default_threads(1)} cores divided among the jobs); a run's result "
                     "depends on it, not on --jobs")
    report = commands.add_parser("report", help="(re)write report.csv, report.md and the figures")
    report.add_argument("folder", type=Path, help="the study folder")
    check = commands.add_parser("check", help="check study files against W&B's sweep format")
    check.add_argument("studies", type=Path, nargs="+")
    return top


def main(argv: list[str] | None = None) -> None:
    """Run the command line (``argv`` as a user types it; default ``sys.argv``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = parser().parse_args(argv)
    try:
        match args.command:
            case "run":
                _run(args, extra)
            case "report":
                _no_extra(extra, "report")
                print(f"report: {write_report(args.folder)}")
            case "check":
                _no_extra(extra, "check")
                for path in args.studies:
                    study = load_study(path)
                    print(f"{path}: valid ({study.method}, {len(study.parameters)} parameters)")
    except UserError as error:
        print(f"studies: error: {error}", file=sys.stderr)
        sys.exit(1)


def _run(args: argparse.Namespace, extra: list[str]) -> None:
    taken = [item for item in extra if item.split("=", 1)[0] in RUNNER_OPTIONS]
    if taken:
        raise UserError(f"the runner sets {' and '.join(RUNNER_OPTIONS)} on every run itself; "
                        f"drop {', '.join(taken)} (choose the study folder with --out).")
    for option, value in (("--count", args.count), ("--jobs", args.jobs),
                          ("--threads-per-run", args.threads_per_run)):
        if value is not None and value < 1:
            raise UserError(f"{option} must be at least 1 (got {value}).")
    study = load_study(args.study)
    out = args.out or Path("runs") / "studies" / study.name
    try:
        run_study(study, out, extra, count=args.count, dry_run=args.dry_run, jobs=args.jobs,
                  threads=args.threads_per_run)
    except KeyboardInterrupt:
        print("studies: interrupted; run the same command again to go on "
              "(finished runs are kept and skipped).", file=sys.stderr)
        if (out / "index.json").exists():
            write_report(out)
        sys.exit(130)
    if not args.dry_run:
        print(f"report: {write_report(out)}")


def _no_extra(extra: list[str], command: str) -> None:
    if extra:
        raise UserError(f"`{command}` takes no overrides after `--` (got {' '.join(extra)}).")
