"""``main``: the command line as a function, with one-paragraph errors.

``python main.py ...`` (the repository's entry point), the ``netscope`` console script and the
tests all call it.
"""

import os
import sys
from pathlib import Path

from lightning.fabric.utilities.exceptions import MisconfigurationException

from callbacks.run_summary import FILENAME, one_line, write_summary
from netscope.cli import NetscopeCLI
from core.errors import UserError
from core.rundir import RUN_DIR_ENV


def main(args: list[str] | None = None) -> None:
    """Run the command line (``args`` as a user would type them; default ``sys.argv``).

    Errors the user can fix (bad data, Lightning misconfiguration) are printed as one
    paragraph and exit with status 1; the run directory records them in ``metrics.json``.
    """
    if "LOCAL_RANK" not in os.environ:  # not a DDP worker: this invocation makes its own run dir
        os.environ.pop(RUN_DIR_ENV, None)
    try:
        NetscopeCLI(args=args)
    except Exception as raised:
        error = user_error(raised)
        if error is None:
            raise
        run_dir = os.environ.get(RUN_DIR_ENV)
        if run_dir and not (Path(run_dir) / FILENAME).exists():
            write_summary(run_dir, status="failed", reason=one_line(error))
        print(f"netscope: error: {error}", file=sys.stderr)
        sys.exit(1)


def user_error(error: BaseException | None) -> BaseException | None:
    """The UserError (or Lightning misconfiguration) behind ``error``, if any: jsonargparse
    wraps what a model's or datamodule's ``__init__`` raises in a ValueError of its own."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, (UserError, MisconfigurationException)):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None

