"""The netscope command line: LightningCLI's parser, netscope's options, and a hand-over.

``NetscopeCLI`` parses (LightningCLI with any model: ``--model`` takes netscope's models, any
``LightningModule`` and any ``torch.nn.Module``; ``--data`` any ``LightningDataModule``),
refuses a wrong checkpoint before LightningCLI reads it, and hands the parsed command to
:func:`netscope.lifecycle.run_command`, which does everything else.
"""

import time
from argparse import ArgumentError
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, LRSchedulerTypeTuple
from torch import nn
from torch.optim import Optimizer

import netscope.callbacks  # noqa: F401  (their bare names resolve: class_path: Doctor)
import netscope.datamodules  # noqa: F401
import netscope.optim  # noqa: F401
from netscope.callbacks.checkpoint import FiniteModelCheckpoint
from netscope.checkpoints import check_checkpoint
from netscope.console import quiet_third_party_noise
from netscope.core.compat import CLIHooks, subcommand_parsers
from netscope.core.errors import UserError
from netscope.help_text import with_help
from netscope.lifecycle import Command, RunResult, run_command
from netscope.models import BaseModel
from netscope.option_errors import explain_option_error
from netscope.trainer import NetscopeTrainer

#: Read before any --config file by every command: the callbacks every config gets (one
#: place for all configs; a config adds to them with ``callbacks+:``).
DEFAULTS_FILE = Path(__file__).with_name("defaults.yaml")

DEFAULT_LOGGER = {"class_path": "lightning.pytorch.loggers.WandbLogger",
                  "init_args": {"project": "netscope", "log_model": True, "save_dir": "."}}

#: ``--model`` takes these, tried in order: a bare name (``MLP``) is looked up among
#: netscope's models first (torchvision has an ``MLP`` too), a dotted path anywhere.
MODEL_TYPES = (BaseModel, LightningModule, nn.Module)


class NetscopeCLI(CLIHooks):
    """``fit``/``validate``/``test``/``predict``/``check``/``export``/``serve`` for any model
    and datamodule.

    ``NetscopeCLI(args)`` runs the command (:attr:`result` says how it ended);
    ``NetscopeCLI(args, run=False)`` parses a config without a command and builds what a
    ``fit`` would run on (``trainer``, ``model``, ``datamodule``), without running it.
    """

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        self.started = time.monotonic()
        self.result: RunResult | None = None
        quiet_third_party_noise()
        super().__init__(
            None,
            LightningDataModule,
            trainer_class=NetscopeTrainer,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=None,  # the lifecycle saves config.yaml (RunConfigSaver)
            auto_configure_optimizers=False,  # the model builds them: netscope.optim.schedules
            seed_everything_default=0,
            # the model's hyper-parameters are the arguments it got, facts of the data
            # included (LightningCLI's support would store the config as parsed, without them)
            load_from_checkpoint_support=False,
            parser_kwargs=with_help({"default_env": False, **{
                command: {"default_config_files": [str(DEFAULTS_FILE)]}
                for command in self.subcommands()}}, NetscopeTrainer),
            args=args,
            run=run,
        )

    # ---------------------------------------------------------------------- parsing
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

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Lightning's four commands plus ``check``, ``export`` and ``serve``
        (``NetscopeTrainer`` methods; the model and data come from the config)."""
        extra = {name: {"model", "datamodule"} for name in ("check", "export", "serve")}
        return {**LightningCLI.subcommands(), **extra}

    def add_core_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """The trainer and the data as LightningCLI adds them; the model as any of
        :data:`MODEL_TYPES` (LightningCLI takes LightningModules only)."""
        parser.add_lightning_class_args(self.trainer_class, "trainer")
        parser.add_subclass_arguments(MODEL_TYPES, "model", fail_untyped=False, required=True)
        parser.add_lightning_class_args(LightningDataModule, "data", subclass_mode=True)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # --optimizer and --lr_scheduler, as LightningCLI adds them, but handed to the model
        # (netscope.model_forms) to be built once the fit's length is known.
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

    def read_checkpoint_hparams(self) -> None:
        """Refuse a missing or unreadable checkpoint, or one of another model class; then the
        model's init arguments the checkpoint saved take the place of the config's, so that
        the weights fit the model built (its data's facts are checked again when it is)."""
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else None
        if config is None or not config.get("ckpt_path"):
            return
        # "last" and "hpc" become the file they name, checked like any path.
        config.ckpt_path, hparams = check_checkpoint(config.ckpt_path, config.model.class_path,
                                                     (config.get("checkpoint") or {}).get("dirpath"),
                                                     config.trainer.get("default_root_dir"))
        init_args = config.model.get("init_args")
        for name, value in hparams.items():
            if init_args is not None and name in init_args and not name.startswith("_"):
                init_args[name] = value

    # ---------------------------------------------------------------------- hand-over
    def instantiate_classes(self) -> None:
        """Nothing is built while parsing: the lifecycle builds the classes, once it has the
        run directory. Without a command (``run=False``), build what a ``fit`` would run on."""
        if self.subcommand is None:
            from netscope.assembly import build_parts
            from netscope.lifecycle import open_run

            command = Command("fit", self.config, self.parser, self.started)
            run, resumed = open_run(command)
            parts = build_parts(command, run, resumed)
            self.trainer, self.model, self.datamodule = parts.trainer, parts.model, parts.datamodule

    def run_subcommand(self, subcommand: str) -> None:
        parser = subcommand_parsers(self.parser)[subcommand]
        command = Command(subcommand, self.config[subcommand], parser, self.started)
        try:
            self.result = run_command(command)
        finally:
            self.trainer = getattr(self.result, "trainer", None)
