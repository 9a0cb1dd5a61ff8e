"""The netscope command line: LightningCLI plus run directories (new, or the one a fit
resumes), linking, a final test, and one-paragraph errors for what a user can get wrong."""

import os
import sys
from argparse import ArgumentError
from copy import deepcopy
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelSummary, ProgressBar, RichProgressBar
from lightning.pytorch.cli import (
    LightningArgumentParser,
    LightningCLI,
    LRSchedulerTypeTuple,
    instantiate_class,
)
from lightning.pytorch.loggers import CSVLogger
from torch.optim import Optimizer

from netscope.callbacks.checkpoint import FiniteModelCheckpoint
from netscope.callbacks.console import EpochLinePrinter, ModelTable
from netscope.callbacks.learning_rate import LearningRate
from netscope.callbacks.resume import ResumeState
from netscope.callbacks.run_summary import RunSummary, one_line, read_summary, write_summary
from netscope.core.errors import UserError, user_error
from netscope.core.rundir import create_run_dir, join_run_dir, run_dir_of_checkpoint
from netscope.datamodules.base import BaseDataModule
from netscope.models.base import BaseModel
from netscope.optim.schedules import with_trial_lengths
from netscope.checkpoints import check_checkpoint, checkpoint_step
from netscope.config_saver import RunConfigSaver
from netscope.console import precision_advice, print_last_line, quiet_third_party_noise
from netscope.loggers import HistoryCSVLogger, finish_runs, place_loggers, quiet_wandb_init
from netscope.option_errors import explain_option_error
from netscope.trainer import NetscopeTrainer
from netscope.wandb_setup import WandbNotice

#: Read before any --config file by every command: the diagnostics callbacks (one place for
#: all configs; a config adds to them with ``callbacks+:``).
DEFAULTS_FILE = Path(__file__).with_name("defaults.yaml")

DEFAULT_LOGGER = {"class_path": "lightning.pytorch.loggers.WandbLogger",
                  "init_args": {"project": "netscope", "log_model": True, "save_dir": "."}}


#: The files of a run directory that a resumed fit rewrites as it starts.
RESUME_REWRITES = ("config.yaml", "metrics.json", "csv/metrics.csv", "csv/hparams.yaml")


class NetscopeCLI(LightningCLI):
    """``fit``/``validate``/``test``/``predict`` for any ``models`` x ``datamodules`` pair."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        self.run_dir: Path | None = None
        self.resume_step: int | None = None  # a resumed fit: its checkpoint's global step
        self.before_resume: dict[Path, bytes] = {}  # what a resumed fit rewrites as it starts
        self.logger_notices: list[str] = []
        quiet_third_party_noise()
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
                trainer_defaults={"callbacks": [RunSummary(), ResumeState(), LearningRate()]},
                seed_everything_default=0,
                parser_kwargs={"default_env": False, **{
                    command: {"default_config_files": [str(DEFAULTS_FILE)]}
                    for command in self.subcommands()}},
                args=args,
                run=run,
            )
        except BaseException as error:
            finish_runs(getattr(self, "trainer", None), failed=True)
            if not self.undo_refused_resume():
                self.record_failure(error)
                print_last_line(self.run_dir, getattr(self, "subcommand", None))
            raise
        finish_runs(getattr(self, "trainer", None))  # the command (fit + its test) is over
        print_last_line(self.run_dir, self.subcommand)

    def undo_refused_resume(self) -> bool:
        """A resumed fit that failed before its first step (refused: a schedule that no
        longer fits, a wrong override) puts back the files it rewrote as it started, so a
        finished run keeps its config.yaml, "completed" metrics.json and history."""
        trainer = getattr(self, "trainer", None)
        if not self.before_resume or trainer is None or trainer.global_step > (self.resume_step or 0):
            return False
        for path, content in self.before_resume.items():
            path.write_bytes(content)
        return True

    def record_failure(self, error: BaseException) -> None:
        """Say in ``metrics.json`` why the command failed, unless the run already said how
        it ended (an interruption, a divergence): a failed command never leaves an empty
        run directory, nor one that claims to be running."""
        if self.run_dir is None or (isinstance(error, SystemExit) and not error.code):
            return
        status = (read_summary(self.run_dir) or {}).get("status")
        if status in (None, "running"):
            write_summary(self.run_dir, status="failed", reason=one_line(user_error(error) or error))

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        # Parse errors are raised, not printed with the whole usage: parse_arguments turns
        # them into one paragraph.
        kwargs.setdefault("exit_on_error", False)
        return super().init_parser(**kwargs)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse as LightningCLI does; a wrong option or value becomes one paragraph with
        a "did you mean" (:mod:`netscope.option_errors`)."""
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as error:
            raise UserError(explain_option_error(error, parser, args)) from None

    def _parse_ckpt_path(self) -> None:
        """Refuse a missing or unreadable checkpoint, or one of another model class, before
        LightningCLI reads the checkpoint's hyper-parameters into the config (which would
        otherwise silently replace the configured model class with the checkpoint's)."""
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else None
        if config is not None and config.get("ckpt_path"):
            # "last" and "hpc" become the file they name, checked like any path.
            config.ckpt_path = check_checkpoint(config.ckpt_path, config.model.class_path,
                                                (config.get("checkpoint") or {}).get("dirpath"),
                                                config.trainer.get("default_root_dir"))
        super()._parse_ckpt_path()
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
        parser.add_lightning_class_args(FiniteModelCheckpoint, "checkpoint")
        parser.set_defaults({
            "checkpoint.save_last": True,  # every fit can be resumed from last.ckpt
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
        """Create the run directory (or, for a fit resumed from a run's checkpoint, take
        that run's) and point the trainer, checkpoints and loggers at it."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        if self.subcommand == "predict" and not config.ckpt_path and not config.untrained:
            raise UserError(
                "predict needs trained weights: give the checkpoint to predict with, e.g. "
                "--ckpt_path runs/<run>/checkpoints/last.ckpt. To predict with the model's "
                "untrained (initial) weights on purpose, add --untrained true.")
        advice = precision_advice(config.trainer.precision, config.trainer.accelerator)
        if advice and os.environ.get("LOCAL_RANK", "0") == "0":
            print(advice, file=sys.stderr)
        # config.yaml records the config as given (it reruns as a new run), not as placed.
        self.config_as_given = deepcopy(config)
        resumed = None
        if self.subcommand == "fit" and config.ckpt_path:
            resumed = run_dir_of_checkpoint(config.ckpt_path)
        if resumed is not None:  # continue the run: same directory, history and W&B run
            self.config_as_given.ckpt_path = None
            self.resume_step = checkpoint_step(config.ckpt_path)
            self.run_dir = join_run_dir(resumed)
            self.before_resume = {path: path.read_bytes() for path in (
                self.run_dir / name for name in RESUME_REWRITES) if path.is_file()}
        else:
            model_name = config.model.class_path.rsplit(".", 1)[-1].lower()
            data_name = config.data.class_path.rsplit(".", 1)[-1].removesuffix("DataModule").lower()
            name = config.run_name or f"{self.subcommand or 'run'}-{model_name}-{data_name}"
            self.run_dir = create_run_dir(config.trainer.default_root_dir or "runs", name)
        config.trainer.default_root_dir = str(self.run_dir)
        if config.checkpoint.dirpath is None:
            config.checkpoint.dirpath = str(self.run_dir / "checkpoints")
        self.logger_notices = place_loggers(config.trainer.logger, self.run_dir, self.run_dir.name,
                                            resume=resumed is not None)

    def instantiate_classes(self) -> None:
        """Build the classes as LightningCLI does, and the optimizer and LR scheduler once
        on trial: a value any constructor refuses (``--optimizer.lr -0.1``) is reported
        before training starts, as one paragraph naming the option."""
        try:
            super().instantiate_classes()
        except (ValueError, TypeError) as error:
            if user_error(error) is not None:
                raise
            raise UserError(f"{_refusing_class(error)} refused a value from the config: "
                            f"{_innermost(error)}. Fix it in the config or on the command line "
                            f"(see `python main.py {self.subcommand} --help`).") from error
        self._try_optimizer()
        if isinstance(self.model, BaseModel):  # built for real when the fit knows its length
            self.model.choose_optimizers(self._get(self.config_init, "optimizer"),
                                         self._get(self.config_init, "lr_scheduler"))

    def _try_optimizer(self) -> None:
        """Construct the configured optimizer and scheduler on the model's parameters once."""
        optimizer_init = self._get(self.config_init, "optimizer")
        parameters = [p for p in self.model.parameters() if p.requires_grad]
        if not optimizer_init or not parameters:
            return
        try:
            optimizer = instantiate_class((parameters,), optimizer_init)
        except (ValueError, TypeError) as error:
            raise UserError(_refused("optimizer", optimizer_init, error)) from None
        scheduler_init = self._get(self.config_init, "lr_scheduler")
        if scheduler_init:
            try:  # lengths the fit will set are stood in for (see models.optimization)
                instantiate_class(optimizer, with_trial_lengths(scheduler_init, optimizer))
            except (ValueError, TypeError) as error:
                raise UserError(_refused("lr_scheduler", scheduler_init, error)) from None

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Add a local metrics history (``csv/metrics.csv``) beside the configured loggers,
        and a progress display that suits the output: rich on a terminal, lines in a log."""
        trainer_config = self._get(self.config_init, "trainer", default={})
        kwargs["logger"] = with_history(trainer_config.get("logger"), self.run_dir, self.resume_step)
        configured = list(trainer_config.get("callbacks") or [])
        added = [WandbNotice(self.logger_notices)]
        if trainer_config.get("enable_model_summary", True) is not False and not any(
            isinstance(c, ModelSummary) for c in configured
        ):
            added.append(ModelTable())
        if trainer_config.get("enable_progress_bar", True) is not False and not any(
            isinstance(c, ProgressBar) for c in configured
        ):
            if sys.stdout.isatty():
                added.append(RichProgressBar())
            else:
                added.append(EpochLinePrinter())
                kwargs["enable_progress_bar"] = False
        kwargs["callbacks"] = [*configured, *added]
        trainer = super().instantiate_trainer(**kwargs)
        quiet_wandb_init(trainer.loggers)
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


def with_history(logger: Any, run_dir: Path | None, resume_step: int | None = None) -> Any:
    """The configured logger(s) plus a CSVLogger writing ``<run_dir>/csv/metrics.csv``.

    Every run keeps its scalar history as plain CSV whatever else it logs to, so reports
    (``python -m studies report``) and a user's own scripts can read it without a service.
    A resumed fit (``resume_step``: its checkpoint's step) continues that history.
    """
    if run_dir is None or logger is None or logger is True:
        return logger  # nothing to place it in, or Lightning's own default logger
    loggers = [] if logger is False else logger if isinstance(logger, list) else [logger]
    if not any(isinstance(item, CSVLogger) for item in loggers):
        loggers = [*loggers, HistoryCSVLogger(save_dir=run_dir, name="csv", version="",
                                              resume_step=resume_step)]
    return loggers


def _innermost(error: BaseException) -> str:
    """The message of the error at the bottom of ``error``'s chain (jsonargparse wraps what
    a constructor raised in errors of its own), on one line."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    return " ".join(str(error).split()) or type(error).__name__


def _refusing_class(error: BaseException) -> str:
    """The class whose ``__init__`` raised the bottom of ``error``'s chain, as a class
    path (``torch.optim.SGD``), or "A constructor" when no ``__init__`` is on its stack."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    found, trace = "A constructor", error.__traceback__
    while trace is not None:
        instance = trace.tb_frame.f_locals.get("self")
        if trace.tb_frame.f_code.co_name == "__init__" and instance is not None:
            found = f"{type(instance).__module__}.{type(instance).__qualname__}"
        trace = trace.tb_next
    return found


def _refused(key: str, init: Any, error: BaseException) -> str:
    """The paragraph for an optimizer or scheduler that refused its arguments."""
    class_path = init.get("class_path", "?") if hasattr(init, "get") else "?"
    return (f"--{key} {class_path} refused its arguments: {_innermost(error)}. Fix the value "
            f"(--{key}.<argument> on the command line, or {key}.init_args in the config).")
