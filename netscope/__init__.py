"""netscope's glue: the LightningCLI application, run directories, logger set-up, errors.

Models, datamodules and callbacks live in their own top-level packages; this package holds
what ties them into one command (``python main.py ...``).
"""
