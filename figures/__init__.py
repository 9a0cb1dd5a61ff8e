"""Every figure netscope draws, from a run's own files (see :mod:`core.history`).

``style`` fixes how they look (one layer colour convention, input to output); each other
module draws one kind of figure.
"""
