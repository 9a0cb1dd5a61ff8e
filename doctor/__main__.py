"""``python -m doctor RUN_DIR [--json] [--fail_on warning]``: a finished run's findings.

Re-runs the rules over the run's ``csv/metrics.csv`` (the same series the ``Doctor``
callback saw) with the pre-flight's findings and context from ``preflight.json`` and the
divergence guard's verdict from ``findings.json``. A run without that history (a plain
Lightning script whose logger writes no CSV there) is read from the findings and coverage
the fit itself recorded. Installed, it is ``python -m netscope.doctor``.

Exit status: 0 healthy; 1 when a finding at or above ``--fail_on`` (default ``error``) is
present, or the folder is not a run.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Literal, get_args

from netscope.core.rundir import RunDir
from netscope.doctor.coverage import Coverage
from netscope.doctor.findings import Finding, console_block, gate, merge, read_findings
from netscope.doctor.rules import Context, replay, settle
from netscope.doctor.thresholds import Thresholds

FailOn = Literal["error", "warning", "info", "never"]


def diagnose(run_dir: str | Path, thresholds: Thresholds | None = None) -> list[Finding]:
    """The findings of the run in ``run_dir``: recomputed from its history where it has one,
    else those the fit recorded."""
    run = RunDir(run_dir)
    report = run.preflight() or {}
    recorded = read_findings(run)
    if not run.has_history():
        return merge([Finding.from_dict(r) for r in report.get("findings", [])], recorded)
    context = Context.from_dict(report["context"]) if "context" in report else Context()
    findings = [Finding.from_dict(r) for r in report.get("findings", [])]
    thresholds = thresholds or Thresholds()
    history = run.history()
    findings = merge(findings, replay(history, context, thresholds))
    guard = [f for f in recorded if f.code == "diverged"]
    return settle(merge(findings, guard), history, context, thresholds)


def coverage_of(run: RunDir) -> Coverage:
    """What the run's doctor checked: the fit's own record, else the pre-flight's."""
    summary = run.summary() or {}
    if "checked" in summary:
        return Coverage.from_dict(summary)
    return Coverage.from_dict(run.preflight())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m doctor", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run directory (runs/<time>-<name>)")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--fail_on", choices=get_args(FailOn), default="error",
                        help="exit 1 when a finding of this severity or graver is present "
                             "(default: error; never: always exit 0)")
    args = parser.parse_args(argv)
    run = RunDir(args.run_dir)
    if not args.run_dir.is_dir():
        print(f"python -m doctor: error: {args.run_dir} is not a run directory", file=sys.stderr)
        sys.exit(1)
    if not run.is_run():
        # "no findings" here would read as "healthy" for a run that was never checked
        print(f"python -m doctor: error: {args.run_dir} holds nothing to diagnose (no "
              f"{RunDir.HISTORY}, {RunDir.PREFLIGHT}, {RunDir.FINDINGS} or {RunDir.SUMMARY}): "
              f"it is not a netscope run directory, or its run stopped before the doctor's "
              f"first check", file=sys.stderr)
        sys.exit(1)
    findings = diagnose(run.path)
    summary = run.summary() or {}
    if args.json:
        print(json.dumps([f.to_dict() for f in findings], indent=2))
    else:
        source = "" if run.has_history() else f" (from {RunDir.FINDINGS}: no {RunDir.HISTORY} to recompute from)"
        print(console_block(findings, f"{args.run_dir}{source}", coverage_of(run)))
        if summary.get("status") in ("failed", "interrupted", "diverged", "running"):
            print(f"  the run {_ended(summary)}: the checks above cover what it logged before")
    sys.exit(1 if gate(findings, args.fail_on) else 0)


def _ended(summary: dict) -> str:
    status, reason = summary.get("status"), summary.get("reason")
    said = {"running": "did not finish (killed, or still running)"}.get(status, status)
    return f"{said} ({reason})" if reason else said


if __name__ == "__main__":
    main()
