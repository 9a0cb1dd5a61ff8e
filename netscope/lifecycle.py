"""One command, top to bottom: :func:`run_command`.

``NetscopeCLI`` parses the command line and hands the parsed config here. In order:

1. create the run directory (or join the one a resumed fit continues);
2. build the data, the model (any model: :mod:`netscope.models_of_users`), the callbacks
   (from one place: :mod:`netscope.assembly`), the loggers and the trainer;
3. run the command (``fit`` and its test, ``check``, ``validate``, ``test``, ``predict``,
   ``export``, ``serve``);
4. summarize (``metrics.json`` says how it ended, also when it failed) and finish the
   loggers' runs.
"""

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from jsonargparse import ArgumentParser, Namespace
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.utilities.model_helpers import is_overridden

from netscope.assembly import Parts, build_parts
from netscope.callbacks.run_summary import RunSummary, record_failure
from netscope.checkpoints import checkpoint_step
from netscope.console import precision_advice, print_last_line
from netscope.core.errors import UserError, one_line, user_error
from netscope.core.rundir import RunDir
from netscope.doctor.findings import gate
from netscope.loggers import finish_runs
from netscope.trainer import NetscopeTrainer


@dataclass
class Command:
    """A parsed command: its name, its config, and the parser that read it.

    Attributes:
        name: ``fit``, ``validate``, ``test``, ``predict``, ``check``, ``export`` or ``serve``.
        config: the command's parsed config (model, data, trainer, optimizer, ...).
        parser: the command's parser (it builds the config's classes and dumps the config).
        started: when the process started the command (``time.monotonic()``).
    """

    name: str
    config: Namespace
    parser: ArgumentParser
    started: float = field(default_factory=time.monotonic)

    def option(self, key: str, default: Any = None) -> Any:
        """A command-level option (``ckpt_path``, ``fail_on``, ...), or ``default``."""
        return self.config.get(key, default)


@dataclass
class RunResult:
    """How a command ended."""

    run: RunDir | None
    status: str
    exit_code: int = 0
    trainer: NetscopeTrainer | None = None


def run_command(command: Command) -> RunResult:
    """Run one command: run directory, parts, the command itself, summary, loggers."""
    refuse_early(command)
    run, resumed = open_run(command)
    parts: Parts | None = None
    snapshot = run.snapshot(RunDir.RESUME_REWRITES) if resumed else {}
    try:
        parts = build_parts(command, run, resumed)
        execute(command, parts)
    except BaseException as error:
        finish_runs(parts.trainer if parts else None, failed=True)
        refused = resumed and _before_first_step(parts, command)
        if refused:  # a refused resume leaves the finished run as it was
            RunDir.restore(snapshot)
        elif not (isinstance(error, SystemExit) and not error.code
                  and type(error).__name__ != "SIGTERMException"):
            record_failure(run, error, one_line(user_error(error) or error))
            print_last_line(run.path, command.name)
        raise
    finish_runs(parts.trainer)  # the command (fit + its test) is over
    print_last_line(run.path, command.name)
    summary = run.summary() or {}
    failing = command.name == "check" and gate(parts.doctor_findings(), command.option("fail_on", "error"))
    return RunResult(run, summary.get("status", "completed"), 1 if failing else 0, parts.trainer)


def refuse_early(command: Command) -> None:
    """What can be said before anything is built: a ``predict`` without weights, and a
    precision this machine only emulates."""
    if command.name == "predict" and not command.option("ckpt_path") and not command.option("untrained"):
        raise UserError(
            "predict needs trained weights: give the checkpoint to predict with, e.g. "
            "--ckpt_path runs/<run>/checkpoints/last.ckpt. To predict with the model's "
            "untrained (initial) weights on purpose, add --untrained true.")
    trainer = command.config.trainer
    accelerator = str(trainer.accelerator)
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(f"--trainer.accelerator {accelerator}: PyTorch sees no GPU on this machine "
                        f"(torch.cuda.is_available() is False; a CPU-only install of torch, or "
                        f"no driver). Leave the option out (auto uses a GPU where there is one) "
                        f"or use --trainer.accelerator cpu.")
    if os.environ.get("LOCAL_RANK", "0") != "0":
        return
    advice = precision_advice(trainer.precision, trainer.accelerator)
    if advice:
        print(advice, file=sys.stderr)
    devices, cores = trainer.devices, os.cpu_count() or 1
    devices = int(devices) if isinstance(devices, str) and devices.isdigit() else devices
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if on_cpu and isinstance(devices, int) and devices > cores:
        print(f"netscope: note: --trainer.devices {devices} starts {devices} processes on this "
              f"machine's {cores} CPU cores: they share the cores, so the fit is slower, not "
              f"faster. Use --trainer.devices {cores} or fewer.", file=sys.stderr)


def open_run(command: Command) -> tuple[RunDir, bool]:
    """The run directory of this command: the run a fit resumes (same directory, history
    and W&B run), or a new one named after the command, model and data."""
    config = command.config
    ckpt_path = command.option("ckpt_path")
    if command.name == "fit" and ckpt_path:
        resumed = RunDir.of_checkpoint(ckpt_path)
        if resumed is not None:
            return RunDir.join(resumed.path), True
    model_name = config.model.class_path.rsplit(".", 1)[-1].lower()
    data_name = config.data.class_path.rsplit(".", 1)[-1].removesuffix("DataModule").lower()
    name = config.get("run_name") or f"{command.name}-{model_name}-{data_name}"
    return RunDir.create(config.trainer.default_root_dir or "runs", name), False


def execute(command: Command, parts: Parts) -> None:
    """The command itself, on the built parts."""
    trainer, model, data = parts.trainer, parts.model, parts.datamodule
    ckpt_path = command.option("ckpt_path")
    match command.name:
        case "fit":
            trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
            test_after_fit(command, parts)
        case "check":
            trainer.fit(model, datamodule=data)
            parts.require_preflight()
        case "validate":
            trainer.validate(model, datamodule=data, ckpt_path=ckpt_path)
        case "test":
            trainer.test(model, datamodule=data, ckpt_path=ckpt_path, verbose=False)
        case "predict":
            trainer.predict(model, datamodule=data, ckpt_path=ckpt_path, return_predictions=False)
        case "export" | "serve":
            method = getattr(trainer, command.name)
            method(model, datamodule=data, **parts.method_options)


def test_after_fit(command: Command, parts: Parts) -> None:
    """Test the best checkpoint, unless turned off, stopped early, or there is no test split."""
    trainer = parts.trainer
    if not command.option("test_after_fit", True) or trainer.interrupted:
        return
    summary = RunSummary.of(trainer)
    if summary is not None and summary.status != "completed":
        return
    if not _has_test_split(parts.datamodule, parts.model):
        return
    checkpoint = trainer.checkpoint_callback
    best = checkpoint.best_model_path if checkpoint is not None else ""
    trainer.test(parts.model, datamodule=parts.datamodule, ckpt_path=best or None, verbose=False)


def _has_test_split(datamodule: LightningDataModule | None, model: LightningModule) -> bool:
    """Whether there is a test to run: a model with a ``test_step``, and data with a test
    split (netscope's datamodules say; any other that defines a test loader has one)."""
    if not is_overridden("test_step", model):
        return False
    if datamodule is not None and hasattr(datamodule, "has_test"):
        return bool(datamodule.has_test)
    return is_overridden("test_dataloader", datamodule if datamodule is not None else model)


def _before_first_step(parts: Parts | None, command: Command) -> bool:
    """Whether a resumed fit failed before taking a step beyond its checkpoint."""
    if parts is None:
        return True
    return parts.trainer.global_step <= checkpoint_step(command.option("ckpt_path"))
