"""``python -m doctor RUN_DIR [--json]``: the findings of a finished run, from its files.

Re-runs the rules over the run's ``csv/metrics.csv`` (the same series the ``Doctor``
callback saw) with the pre-flight's findings and context from ``preflight.json`` and the
divergence guard's verdict from ``findings.json``, and prints the console block.
"""

import argparse
import json
import sys
from pathlib import Path

from netscope.core.history import CSV_PATH, read_history
from netscope.doctor.findings import Finding, console_block, merge, read_findings
from netscope.doctor.preflight import FILENAME as PREFLIGHT_FILE
from netscope.doctor.rules import Context, replay, settle
from netscope.doctor.thresholds import Thresholds


def diagnose(run_dir: str | Path, thresholds: Thresholds | None = None) -> list[Finding]:
    """The findings of the run in ``run_dir``, recomputed from its files."""
    run_dir = Path(run_dir)
    preflight = run_dir / PREFLIGHT_FILE
    report = json.loads(preflight.read_text()) if preflight.exists() else {}
    context = Context.from_dict(report["context"]) if "context" in report else Context()
    findings = [Finding.from_dict(r) for r in report.get("findings", [])]
    thresholds = thresholds or Thresholds()
    history = read_history(run_dir)
    findings = merge(findings, replay(history, context, thresholds))
    guard = [f for f in read_findings(run_dir) if f.code == "diverged"]
    return settle(merge(findings, guard), history, context, thresholds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m doctor", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run directory (runs/<time>-<name>)")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    args = parser.parse_args(argv)
    if not args.run_dir.is_dir():
        print(f"python -m doctor: error: {args.run_dir} is not a run directory", file=sys.stderr)
        sys.exit(1)
    if not any((args.run_dir / name).exists() for name in (CSV_PATH, PREFLIGHT_FILE, "metrics.json")):
        # "no findings" here would read as "healthy" for a run that was never checked
        print(f"python -m doctor: error: {args.run_dir} holds nothing to diagnose (no "
              f"{CSV_PATH}, {PREFLIGHT_FILE} or metrics.json): it is not a netscope run "
              f"directory, or its run stopped before the doctor's first check", file=sys.stderr)
        sys.exit(1)
    findings = diagnose(args.run_dir)
    if args.json:
        print(json.dumps([f.to_dict() for f in findings], indent=2))
    else:
        print(console_block(findings, str(args.run_dir)))


if __name__ == "__main__":
    main()
