"""netscope's command line: the LightningCLI application and what ties a run together
(run directories, loggers, W&B set-up, the extra commands).

It sits on top: it imports ``models``, ``datamodules`` and ``callbacks``, which import only
``core`` below them.
"""
