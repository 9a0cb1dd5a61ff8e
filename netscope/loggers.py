"""Point every configured logger at the run directory, before the loggers are built."""

from pathlib import Path
from typing import Any

from jsonargparse import Namespace

from netscope.wandb_setup import configure_wandb

# Where each known logger writes inside the run directory: (init argument, value) pairs
# applied unless the user set them.
_LOGGER_PLACEMENT: dict[str, dict[str, str]] = {
    "TensorBoardLogger": {"name": "tensorboard", "version": ""},
    "CSVLogger": {"name": "csv", "version": ""},
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
        class_name = config.class_path.rsplit(".", 1)[-1]
        if init_args.get("save_dir") in (None, ".", "", "lightning_logs"):
            init_args.save_dir = str(run_dir)
        for key, value in _LOGGER_PLACEMENT.get(class_name, {}).items():
            if init_args.get(key) in (None, "lightning_logs"):
                init_args[key] = value
        if class_name == "WandbLogger":
            configure_wandb(init_args, run_name)
        config.init_args = init_args
    return logger_config
