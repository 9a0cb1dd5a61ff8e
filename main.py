"""netscope's entry point: ``python main.py fit --config configs/cifar.yaml``."""

import sys

from netscope.cli import NetscopeCLI
from netscope.errors import UserError


def main(args: list[str] | None = None) -> None:
    """Run the command line (``args`` as a user would type them; default ``sys.argv``).

    Errors the user can fix are printed as one paragraph and exit with status 1.
    """
    try:
        NetscopeCLI(args=args)
    except UserError as error:
        print(f"netscope: error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
