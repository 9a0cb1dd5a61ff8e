"""``main``: the command line as a function, with one-paragraph errors.

``python main.py ...`` (the repository's entry point), the ``netscope`` console script and the
tests all call it.
"""

import sys

from netscope.core.errors import user_error
from netscope.cli import NetscopeCLI


def main(args: list[str] | None = None) -> None:
    """Run the command line (``args`` as a user would type them; default ``sys.argv``).

    Errors the user can fix (bad flags and values, data, checkpoints, Lightning
    misconfiguration) are printed as one paragraph and exit with status 1; a run directory
    already made records them in ``metrics.json`` (``NetscopeCLI`` does that).
    """
    try:
        NetscopeCLI(args=args)
    except Exception as raised:
        error = user_error(raised)
        if error is None:
            raise
        print(f"netscope: error: {' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(1)
