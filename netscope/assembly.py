"""Build what a command runs on: data, model, callbacks, loggers and trainer (:class:`Parts`).

The callbacks come from one place, :func:`callbacks_for`: the list ``netscope/defaults.yaml``
names (with a config's additions), the checkpoint callback (``--checkpoint.*``), and what
every command of netscope has: the run summary, the resume state, the saved config, the W&B
notice, the model table and a progress display that suits the output.
"""

import copy
import inspect
import sys
from dataclasses import dataclass, field
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import Callback, LightningDataModule, LightningModule
from lightning.pytorch.callbacks import ModelCheckpoint, ModelSummary, ProgressBar, RichProgressBar

from netscope.callbacks import Doctor, ResumeState, RunSummary
from netscope.callbacks.board import Board
from netscope.callbacks.console import EpochLinePrinter, EvaluationLines, ModelTable
from netscope.checkpoints import checkpoint_step
from netscope.config_saver import RunConfigSaver
from netscope.core.errors import UserError
from netscope.core.rundir import RunDir
from netscope.doctor.findings import Finding
from netscope.loggers import place_loggers, quiet_wandb_warnings, with_history
from netscope.model_forms import build_model, import_class
from netscope.trainer import NetscopeTrainer
from netscope.wandb_setup import WandbNotice, print_notice

#: The arguments of each extra command's Trainer method, handed to it by the lifecycle:
#: read from the method, so that a new option can never be parsed and then dropped.
METHOD_OPTIONS = {
    name: tuple(p for p in inspect.signature(getattr(NetscopeTrainer, name)).parameters
                if p not in ("self", "model", "datamodule"))
    for name in ("export", "serve")
}


@dataclass
class Parts:
    """What a command runs on."""

    trainer: NetscopeTrainer
    model: LightningModule
    datamodule: LightningDataModule | None
    run: RunDir
    method_options: dict[str, Any] = field(default_factory=dict)

    def doctor_findings(self) -> list[Finding]:
        return Board.of(self.trainer).findings

    def require_preflight(self) -> None:
        """``check`` ran its pre-flight, or says why not."""
        doctor = next(c for c in self.trainer.callbacks if isinstance(c, Doctor))
        if not doctor.preflight_done:
            raise UserError("check: the pre-flight check did not run (the training data gave "
                            "no batch); see the messages above")


def build_parts(command: Any, run: RunDir, resumed: bool) -> Parts:
    """Data, model, callbacks, loggers and trainer of ``command``, writing into ``run``."""
    config = command.config
    as_given = copy.deepcopy(config)  # config.yaml: the config as given, rerunnable as a new run
    if resumed:
        as_given.ckpt_path = None
    notices = place_loggers(config.trainer.logger, run.path, run.path.name, resume=resumed)
    if config.get("checkpoint") is not None and config.checkpoint.dirpath is None:
        config.checkpoint.dirpath = str(run.file(RunDir.CHECKPOINTS))
    if command.name == "check":
        check_mode(config)
    built = instantiate_all_but_model(command.parser, config)
    datamodule = built.get("data")
    model_notices: list[str] = []
    model = build_model(command.parser, config, datamodule, model_notices)
    for notice in model_notices:
        print_notice(notice)
    resume_step = checkpoint_step(command.option("ckpt_path")) if resumed else None
    trainer_kwargs = dict(built.trainer)
    trainer_kwargs["logger"] = with_history(trainer_kwargs.get("logger"), run.path, resume_step)
    trainer_kwargs["callbacks"] = callbacks_for(command, built, trainer_kwargs, as_given, notices)
    trainer_kwargs["default_root_dir"] = str(run.path)
    if not sys.stdout.isatty() and not _has(trainer_kwargs["callbacks"], ProgressBar):
        trainer_kwargs["enable_progress_bar"] = False
    if command.name == "check":
        trainer_kwargs.update(max_epochs=1, max_steps=-1, num_sanity_val_steps=0,
                              limit_train_batches=trainer_kwargs.get("limit_train_batches") or 1)
    trainer = NetscopeTrainer(**trainer_kwargs)
    Board.attach(trainer, run)
    quiet_wandb_warnings(trainer.loggers)
    options = {k: command.option(k) for k in METHOD_OPTIONS.get(command.name, ())}
    return Parts(trainer, model, datamodule, run, options)


def check_mode(config: Namespace) -> None:
    """``check``: the fit stops after the doctor's pre-flight; nothing is saved."""
    callbacks = config.trainer.get("callbacks") or []
    doctors = [c for c in callbacks if isinstance(c, Namespace)
               and issubclass(import_class(c.class_path), Doctor)]
    if not doctors:
        doctors = [Namespace(class_path="netscope.callbacks.Doctor", init_args=Namespace())]
        config.trainer.callbacks = [*callbacks, *doctors]
    for doctor in doctors:
        doctor.init_args = doctor.get("init_args") or Namespace()
        doctor.init_args.stop_after_preflight = True


def instantiate_all_but_model(parser: Any, config: Namespace) -> Namespace:
    """The config's classes (data, callbacks, loggers, checkpoint) built by the parser, but
    the model: it needs the data's facts first (:func:`netscope.model_forms.build_model`)."""
    without_model = copy.copy(config)
    del without_model["model"]
    return parser.instantiate(without_model)


def callbacks_for(command: Any, built: Namespace, trainer_kwargs: dict[str, Any],
                  as_given: Namespace, notices: list[str]) -> list[Callback]:
    """Every callback of the command, from one place."""
    configured = list(trainer_kwargs.get("callbacks") or [])
    callbacks = [c for c in configured if not isinstance(c, ModelCheckpoint)]
    checkpoint = built.get("checkpoint")
    if command.name != "check" and isinstance(checkpoint, ModelCheckpoint):
        callbacks.append(checkpoint)
    summary = next((c for c in callbacks if isinstance(c, RunSummary)), None)
    if summary is None:  # every command says how it ended, whatever the config lists
        summary = RunSummary()
        callbacks.insert(0, summary)
    summary.count_from(command.started)
    if not _has(callbacks, ResumeState):
        callbacks.insert(1, ResumeState())
    if not trainer_kwargs.get("fast_dev_run"):
        callbacks.append(RunConfigSaver(command.parser, as_given, overwrite=True))
    callbacks.append(WandbNotice(notices))
    callbacks.append(EvaluationLines())
    if trainer_kwargs.get("enable_model_summary", True) is not False and not _has(callbacks, ModelSummary):
        callbacks.append(ModelTable())
    if trainer_kwargs.get("enable_progress_bar", True) is not False and not _has(callbacks, ProgressBar):
        callbacks.append(RichProgressBar() if sys.stdout.isatty() else EpochLinePrinter())
    return callbacks


def _has(callbacks: list[Callback], kind: type) -> bool:
    return any(isinstance(c, kind) for c in callbacks)
