"""netscope's entry point: ``python main.py fit --config configs/cifar.yaml``.

``main(args=None)`` takes the arguments as a user would type them (tests call it that way);
the installed ``netscope`` command runs the same function.
"""

import sys


def main(args: list[str] | None = None) -> None:
    """Run netscope's command line (see :func:`netscope.main.main`)."""
    from netscope.main import main as run  # imported here: Ctrl+C while loading is one line

    run(args)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("netscope: interrupted (Ctrl+C)", file=sys.stderr)
        sys.exit(130)
