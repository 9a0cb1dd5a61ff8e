"""``python -m figures RUN_DIR [RUN_DIR ...]``: redraw a run's figures from its files."""

import argparse
import sys
from pathlib import Path

from netscope.core.rundir import RunDir
from netscope.figures.run import draw_run


def main(argv: list[str] | None = None) -> int:
    """Redraw every figure of each run directory; print the files written."""
    parser = argparse.ArgumentParser(prog="python -m figures", description=__doc__)
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    args = parser.parse_args(argv)
    status = 0
    for run_dir in args.run_dirs:
        if not RunDir(run_dir).is_run():
            print(f"figures: {run_dir} is not a netscope run directory (no "
                  f"{RunDir.HISTORY} or {RunDir.SUMMARY} in it).", file=sys.stderr)
            status = 1
            continue
        paths = draw_run(run_dir)
        print("\n".join(str(p) for p in paths.values()) or f"{run_dir}: nothing to draw")
    return status


if __name__ == "__main__":
    sys.exit(main())
