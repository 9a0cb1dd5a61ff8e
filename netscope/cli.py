"""The netscope command line: LightningCLI plus run directories, linking and a final test."""

import sys
from copy import deepcopy
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer
from torch.optim import Optimizer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, RichModelSummary, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, LRSchedulerTypeTuple
from lightning.pytorch.loggers import CSVLogger

from callbacks.console import EpochLinePrinter
from callbacks.learning_rate import LearningRate
from callbacks.run_summary import RunSummary
from datamodules.base import BaseDataModule
from models.base import BaseModel
from netscope.config_saver import RunConfigSaver
from netscope.loggers import finish_runs, place_loggers
from core.rundir import create_run_dir
from netscope.trainer import NetscopeTrainer

#: Read before any --config file by every command: the diagnostics callbacks (one place for
#: all configs; a config adds to them with ``callbacks+:``).
DEFAULTS_FILE = Path(__file__).with_name("defaults.yaml")

DEFAULT_LOGGER = {"class_path": "lightning.pytorch.loggers.WandbLogger",
                  "init_args": {"project": "netscope", "log_model": True, "save_dir": "."}}


class NetscopeCLI(LightningCLI):
    """``fit``/``validate``/``test``/``predict`` for any ``models`` x ``datamodules`` pair."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        self.run_dir: Path | None = None
        try:
            super().__init__(
                BaseModel,
                BaseDataModule,
                trainer_class=NetscopeTrainer,
                subclass_mode_model=True,
                subclass_mode_data=True,
                save_config_callback=RunConfigSaver,
                auto_configure_optimizers=False,  # built when fit starts: see choose_optimizers
                save_config_kwargs={"overwrite": True},
                trainer_defaults={"callbacks": [RunSummary(), LearningRate()]},
                seed_everything_default=0,
                parser_kwargs={"default_env": False, **{
                    command: {"default_config_files": [str(DEFAULTS_FILE)]}
                    for command in self.subcommands()}},
                args=args,
                run=run,
            )
        except BaseException:
            finish_runs(getattr(self, "trainer", None), failed=True)
            raise
        finish_runs(getattr(self, "trainer", None))  # the command (fit + its test) is over

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Lightning's four commands plus ``check``, ``export`` and ``serve``
        (``NetscopeTrainer`` methods; the model and data come from the config)."""
        extra = {name: {"model", "datamodule"} for name in ("check", "export", "serve")}
        return {**LightningCLI.subcommands(), **extra}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # What the data set knows reaches the model: nobody types it twice.
        for fact in ("num_classes", "input_shape", "task", "class_names"):
            parser.link_arguments(f"data.{fact}", f"model.init_args.{fact}", apply_on="instantiate")
        # --optimizer and --lr_scheduler, as LightningCLI adds them, but handed to the model
        # (see instantiate_classes) to be built once the fit's length is known.
        parser.add_optimizer_args((Optimizer,))
        parser.add_lr_scheduler_args(LRSchedulerTypeTuple)
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({
            "checkpoint.monitor": "val/loss",
            "checkpoint.mode": "min",
            "checkpoint.filename": "epoch{epoch:03d}-step{step}",
            "checkpoint.auto_insert_metric_name": False,
            "trainer.default_root_dir": "runs",
            "trainer.logger": DEFAULT_LOGGER,
        })
        parser.add_argument("--run_name", type=str | None, default=None,
                            help="Name of the run (run directory suffix and W&B run name).")
        parser.add_argument("--test_after_fit", type=bool, default=True,
                            help="After fit, test the best checkpoint when the data has a test split.")

    def before_instantiate_classes(self) -> None:
        """Create the run directory and point the trainer, checkpoints and loggers at it."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        # config.yaml records the config as given (it reruns as a new run), not as placed.
        self.config_as_given = deepcopy(config)
        model_name = config.model.class_path.rsplit(".", 1)[-1].lower()
        data_name = config.data.class_path.rsplit(".", 1)[-1].removesuffix("DataModule").lower()
        name = config.run_name or f"{self.subcommand or 'run'}-{model_name}-{data_name}"
        self.run_dir = create_run_dir(config.trainer.default_root_dir or "runs", name)
        config.trainer.default_root_dir = str(self.run_dir)
        if config.checkpoint.dirpath is None:
            config.checkpoint.dirpath = str(self.run_dir / "checkpoints")
        config.trainer.logger = place_loggers(config.trainer.logger, self.run_dir, self.run_dir.name)

    def instantiate_classes(self) -> None:
        """Build the classes, then hand the optimizer and scheduler choices to the model."""
        super().instantiate_classes()
        if isinstance(self.model, BaseModel):
            self.model.choose_optimizers(self._get(self.config_init, "optimizer"),
                                         self._get(self.config_init, "lr_scheduler"))

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Add a local metrics history (``csv/metrics.csv``) beside the configured loggers,
        and a progress display that suits the output: rich on a terminal, lines in a log."""
        trainer_config = self._get(self.config_init, "trainer", default={})
        kwargs["logger"] = with_history(trainer_config.get("logger"), self.run_dir)
        configured = trainer_config.get("callbacks") or []
        if trainer_config.get("enable_progress_bar", True) is not False and not any(
            isinstance(c, ProgressBar) for c in configured
        ):
            if sys.stdout.isatty():
                kwargs["callbacks"] = [*configured, RichProgressBar(), RichModelSummary()]
            else:
                kwargs["callbacks"] = [*configured, EpochLinePrinter()]
                kwargs["enable_progress_bar"] = False
        trainer = super().instantiate_trainer(**kwargs)
        for callback in trainer.callbacks:
            if isinstance(callback, RunConfigSaver):
                callback.config = self.config_as_given
        return trainer

    def after_fit(self) -> None:
        """Test the best checkpoint, unless turned off, stopped early, or there is no test split."""
        summary = RunSummary.of(self.trainer)
        config = self.config[self.subcommand]
        if not config.test_after_fit or self.trainer.interrupted:
            return
        if summary is not None and summary.status != "completed":
            return
        if not (isinstance(self.datamodule, BaseDataModule) and self.datamodule.has_test):
            return
        checkpoint = self.trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint is not None else ""
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)


def with_history(logger: Any, run_dir: Path | None) -> Any:
    """The configured logger(s) plus a CSVLogger writing ``<run_dir>/csv/metrics.csv``.

    Every run keeps its scalar history as plain CSV whatever else it logs to, so reports
    (``python -m studies report``) and a user's own scripts can read it without a service.
    """
    if run_dir is None or logger is None or logger is True:
        return logger  # nothing to place it in, or Lightning's own default logger
    loggers = [] if logger is False else logger if isinstance(logger, list) else [logger]
    if not any(isinstance(item, CSVLogger) for item in loggers):
        loggers = [*loggers, CSVLogger(save_dir=run_dir, name="csv", version="")]
    return loggers
