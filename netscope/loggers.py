"""Point every configured logger at the run directory before the loggers are built, keep
the CSV history across a resume, and close the loggers' runs when the command ends."""

import csv
import importlib
import os
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from netscope.core.compat import (
    CSV_WRITER_START_HOOK,
    csv_writer_started,
    set_csv_writer,
    started_wandb_run,
    wandb_init_arguments,
)
from netscope.core.rundir import RunDir
from netscope.wandb_setup import configure_wandb

# Where each known logger writes inside the run directory: (init argument, value) pairs
# applied unless the user set them.
_LOGGER_PLACEMENT: dict[type[Logger], dict[str, str]] = {
    TensorBoardLogger: {"name": "tensorboard", "version": ""},
    CSVLogger: {"name": RunDir.CSV_LOGGER_NAME, "version": ""},
}


def place_loggers(logger_config: Any, run_dir: Path, run_name: str,
                  resume: bool = False) -> list[str]:
    """Fill ``save_dir`` (and names) of the logger configs, in place, so they write into
    ``run_dir``.

    Args:
        logger_config: the ``trainer.logger`` value: a bool, a class-path Namespace, or a
            list of them.
        run_dir: the run directory.
        run_name: the run's name (W&B run name, unless set).
        resume: a resumed fit: loggers continue the runs they started in ``run_dir``.

    Returns:
        Notices to print once the loggers' runs have started (:class:`WandbNotice`).
    """
    notices = []
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
            notice = configure_wandb(init_args, run_name, resume)
            notices += [notice] if notice else []
        config.init_args = init_args
    return notices


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
        run = started_wandb_run(logger) if isinstance(logger, WandbLogger) else None
        if run is not None:
            run.finish(exit_code=1 if failed else 0)


class HistoryCSVLogger(CSVLogger):
    """Lightning's ``CSVLogger`` that flushes at every checkpoint and, in a resumed fit,
    continues the history instead of deleting it.

    Lightning's writer deletes an existing ``metrics.csv``; a resumed fit instead keeps
    the rows logged before its checkpoint (``step < resume_step``) and drops the ones a
    killed process wrote after it, which the resumed fit logs again: one history, no row
    twice, none lost.

    Args:
        resume_step: the checkpoint's global step, in a resumed fit; None otherwise.
        Others: see ``CSVLogger``.
    """

    def __init__(self, *args: Any, resume_step: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resume_step = resume_step

    @property
    def experiment(self) -> ExperimentWriter:
        if not csv_writer_started(self) and self.resume_step is not None:
            set_csv_writer(self, _ContinuedWriter(self.log_dir, self.resume_step))
        return super().experiment

    def after_save_checkpoint(self, checkpoint_callback: Checkpoint) -> None:
        # What a checkpoint covers is on disk with it: a resume from it loses no row.
        self.save()


class _ContinuedWriter(ExperimentWriter):
    """An ``ExperimentWriter`` that keeps the rows of an existing ``metrics.csv`` logged
    before ``resume_step``, and its columns."""

    def __init__(self, log_dir: str, resume_step: int) -> None:
        self.resume_step = resume_step
        super().__init__(log_dir)

    def keep_rows_before_resume(self) -> None:
        """Keep the rows of ``metrics.csv`` logged before the checkpoint (Lightning's
        writer would delete the file as it starts)."""
        if not os.path.isfile(self.metrics_file_path):
            return
        with open(self.metrics_file_path, newline="") as file:
            reader = csv.DictReader(file)
            keys = list(reader.fieldnames or [])
            rows = [row for row in reader if float(row.get("step") or 0) < self.resume_step]
        temporary = f"{self.metrics_file_path}.tmp{os.getpid()}"
        with open(temporary, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(temporary, self.metrics_file_path)
        self.metrics_keys = keys


# Lightning's writer calls this method as it starts, to delete an existing file.
setattr(_ContinuedWriter, CSV_WRITER_START_HOOK, _ContinuedWriter.keep_rows_before_resume)


def quiet_wandb_warnings(loggers: list[Logger]) -> None:
    """Leave ``anonymous`` out of what each ``WandbLogger`` passes to ``wandb.init`` when
    it is unset: Lightning always passes it (None), and wandb then warns on every run that
    "The anonymous setting has no effect". Only the unset value is dropped; a user's
    ``anonymous: true`` still reaches wandb, with its warning."""
    for logger in loggers:
        init = wandb_init_arguments(logger) if isinstance(logger, WandbLogger) else None
        if init is not None and init.get("anonymous", "") is None:
            del init["anonymous"]


def with_history(logger: Any, run_dir: Path | None, resume_step: int | None = None) -> Any:
    """The configured logger(s) plus a CSVLogger writing the run's ``csv/metrics.csv``.

    Every run keeps its scalar history as plain CSV whatever else it logs to, so reports
    (``python -m studies report``) and a user's own scripts can read it without a service.
    A resumed fit (``resume_step``: its checkpoint's step) continues that history.
    """
    if run_dir is None or logger is None or logger is True:
        return logger  # nothing to place it in, or Lightning's own default logger
    loggers = [] if logger is False else logger if isinstance(logger, list) else [logger]
    if not any(isinstance(item, CSVLogger) for item in loggers):
        loggers = [*loggers, HistoryCSVLogger(save_dir=run_dir, name=RunDir.CSV_LOGGER_NAME,
                                              version="", resume_step=resume_step)]
    return loggers
