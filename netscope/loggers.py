"""Point every configured logger at the run directory before the loggers are built, and
close their runs when the command ends."""

import importlib
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger

from netscope.wandb_setup import configure_wandb

# Where each known logger writes inside the run directory: (init argument, value) pairs
# applied unless the user set them.
_LOGGER_PLACEMENT: dict[type[Logger], dict[str, str]] = {
    TensorBoardLogger: {"name": "tensorboard", "version": ""},
    CSVLogger: {"name": "csv", "version": ""},
}


def place_loggers(logger_config: Any, run_dir: Path, run_name: str) -> Any:
    """Fill ``save_dir`` (and names) of the logger configs so they write into ``run_dir``.

    Args:
        logger_config: the ``trainer.logger`` value: a bool, a class-path Namespace, or a
            list of them.
        run_dir: the run directory.
        run_name: the run's name (W&B run name, unless set).
    """
    configs = logger_config if isinstance(logger_config, list) else [logger_config]
    for config in configs:
        if not isinstance(config, Namespace) or "class_path" not in config:
            continue
        init_args = config.get("init_args") or Namespace()
        logger_class = _import(config.class_path)
        if init_args.get("save_dir") in (None, ".", "", "lightning_logs"):
            init_args.save_dir = str(run_dir)
        for kind, placement in _LOGGER_PLACEMENT.items():
            if not issubclass(logger_class, kind):
                continue
            for key, value in placement.items():
                if init_args.get(key) in (None, "lightning_logs"):
                    init_args[key] = value
        if issubclass(logger_class, WandbLogger):
            configure_wandb(init_args, run_name)
        config.init_args = init_args
    return logger_config


def _import(class_path: str) -> type:
    """The class a (parsed, so importable) ``class_path`` names; subclasses of the known
    loggers are placed like them."""
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def finish_runs(trainer: Trainer | None, failed: bool = False) -> None:
    """Finish the W&B run each ``WandbLogger`` of ``trainer`` started.

    ``WandbLogger`` never calls ``wandb.finish``: a second command in the same process
    (tests, studies) would otherwise log into the first run's directory, and the first
    run's files stay open until the process exits. Called once the whole command (fit and
    the test after it) is over.
    """
    for logger in trainer.loggers if trainer is not None else []:
        # ``_experiment``: the run this logger started, if any (``experiment`` would start one).
        run = getattr(logger, "_experiment", None) if isinstance(logger, WandbLogger) else None
        if run is not None:
            run.finish(exit_code=1 if failed else 0)
