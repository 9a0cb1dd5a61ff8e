"""netscope's core: what every layer above may import, and which imports none of them.

``errors`` (errors a user can fix), ``task`` (what a data set asks of a model), ``rundir``
(one directory per run). The layers read top-down: ``main.py`` -> ``netscope`` (the command
line) -> ``models``, ``datamodules``, ``callbacks``, ``studies`` -> ``core``.
"""
