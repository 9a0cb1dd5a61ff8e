"""``python -m figures RUN_DIR [RUN_DIR ...]``: redraw a run's figures from its files."""

import argparse
import sys
from pathlib import Path

from netscope.figures.run import draw_run


def main(argv: list[str] | None = None) -> int:
    """Redraw every figure of each run directory; print the files written."""
    parser = argparse.ArgumentParser(prog="python -m figures", description=__doc__)
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    args = parser.parse_args(argv)
    status = 0
    for run_dir in args.run_dirs:
        if not (run_dir / "csv").is_dir() and not (run_dir / "metrics.json").exists():
            print(f"figures: {run_dir} is not a netscope run directory (no csv/ or "
                  f"metrics.json in it).", file=sys.stderr)
            status = 1
            continue
        paths = draw_run(run_dir)
        print("\n".join(str(p) for p in paths.values()) or f"{run_dir}: nothing to draw")
    return status


if __name__ == "__main__":
    sys.exit(main())
