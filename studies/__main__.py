"""``python -m studies``: see :mod:`studies.cli`."""

from studies.cli import main

main()
