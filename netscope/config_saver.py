"""Save the resolved config where the run lives, and hand it to every logger."""

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

#: The name ``config.yaml`` has among a W&B run's files.
ATTACHED_CONFIG = "netscope-config.yaml"


class RunConfigSaver(SaveConfigCallback):
    """Save the resolved ``config.yaml`` in the run directory (not in a logger's sub-folder)
    and hand the whole config to every logger; a W&B run also gets the file itself."""

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.already_saved:
            return
        if trainer.is_global_zero:
            self.save_config(trainer, pl_module, stage)
        self.already_saved = True

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        path = Path(trainer.default_root_dir) / self.config_filename
        text = self.parser.dump(self.config, skip_none=False)  # dumped once: it takes a while
        path.write_text(text)
        config = resolved_config(yaml.safe_load(text), pl_module)
        for logger in trainer.loggers:
            logger.log_hyperparams(config)
            if isinstance(logger, WandbLogger):
                attach_config(logger, path)


def attach_config(logger: WandbLogger, path: Path) -> None:
    """Attach ``config.yaml`` to the W&B run as the file ``netscope-config.yaml``.

    wandb keeps the name ``config.yaml`` for its own record of the run config, and
    ``wandb.save`` of a file outside the run's files folder symlinks it with a warning, so
    the file is copied into that folder first and saved from there.
    """
    run = logger.experiment
    if not path.exists() or getattr(run, "disabled", False):
        return
    target = Path(run.dir) / ATTACHED_CONFIG
    shutil.copyfile(path, target)
    run.save(str(target), base_path=run.dir, policy="now")


def resolved_config(config: dict[str, Any], model: LightningModule) -> dict[str, Any]:
    """The whole CLI config as nested dicts (``model``, ``data``, ``optimizer``,
    ``lr_scheduler``, ``trainer``, ``seed_everything``, ...), with the model's init
    arguments as the model received them.

    Values linked from the datamodule (``num_classes``, ``input_shape``, ...) are filled in
    when the classes are instantiated, after the config was parsed, so the parser's dump
    lacks them; the model's saved hyper-parameters hold every init argument it got.
    ``config.yaml`` itself keeps the parser's form, so it can be run again with ``--config``.
    """
    resolved = copy.deepcopy(config)
    init_args = (resolved.get("model") or {}).get("init_args")
    if isinstance(init_args, dict):
        # Leave out the CLI's own bookkeeping (``_class_path``, ``_instantiator``).
        hparams = {k: v for k, v in model.hparams.items() if not k.startswith("_")}
        init_args.update(json.loads(json.dumps(hparams, default=str)))
    return resolved
