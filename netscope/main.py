"""``main``: the command line as a function, with one-paragraph errors and exit codes that
mean something.

``python main.py ...`` (the repository's entry point), the ``netscope`` console script and the
tests all call it. Exit status: 0 when the command did what was asked; 1 when it failed (the
error is printed as one paragraph) or, for ``check``, when a finding at ``--fail_on``'s
severity or graver is present; 130 when interrupted by Ctrl+C (SIGINT), 143 by SIGTERM.
"""

import os
import sys

EXIT_FAILED, EXIT_SIGINT, EXIT_SIGTERM = 1, 130, 143


def main(args: list[str] | None = None) -> None:
    """Run the command line (``args`` as a user would type them; default ``sys.argv``).

    Errors the user can fix (bad flags and values, data, checkpoints, Lightning
    misconfiguration) are printed as one paragraph; a run directory already made records
    them in ``metrics.json``. Ends with ``sys.exit`` when the status is not 0.
    """
    from netscope.core.errors import plain, user_error

    try:
        from netscope.cli import NetscopeCLI

        cli = NetscopeCLI(args=args)
    except KeyboardInterrupt:
        print("netscope: interrupted (Ctrl+C)", file=sys.stderr)
        sys.exit(EXIT_SIGINT)
    except SystemExit as stop:
        sys.exit(_signal_status(stop) or stop.code)
    except Exception as raised:
        error = user_error(raised)
        if error is None:
            raise
        print(f"netscope: error: {plain(str(error))}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    if cli.result is not None and cli.result.exit_code:
        sys.exit(cli.result.exit_code)


def _signal_status(stop: SystemExit) -> int | None:
    """The exit status of a fit Lightning stopped on a signal: it turns SIGTERM into a
    ``SIGTERMException`` (a SystemExit with no code, so status 0) and Ctrl+C into
    ``sys.exit(1)``; a scheduler must see that the job was killed, not that it succeeded."""
    if type(stop).__name__ == "SIGTERMException":
        return EXIT_SIGTERM
    if isinstance(stop.__context__, KeyboardInterrupt):
        return EXIT_SIGINT
    return None


def console_script() -> None:
    """The installed ``netscope`` command: ``main`` with the user's modules importable from
    the current folder (``--model mynet.MyNet``), as ``python -m`` has them."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        main()
    except KeyboardInterrupt:
        print("netscope: interrupted (Ctrl+C)", file=sys.stderr)
        sys.exit(EXIT_SIGINT)
