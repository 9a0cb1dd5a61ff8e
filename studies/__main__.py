"""``python -m studies``: see :mod:`studies.cli`."""

from netscope.studies.cli import main

main()
