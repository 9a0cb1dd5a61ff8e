"""A quiet, true console: third-party noise silenced by message, and a last line that
says how the command ended and what to do next."""

import logging
import os
import shlex
import sys
import warnings
from pathlib import Path

from netscope.core.compat import cpu_has_native_bf16
from netscope.core.rundir import RunDir

# Each filter names one message, so every other warning still shows.
_NOISE_WARNINGS = (
    # torch 2.14 deprecates LeafSpec; Lightning 2.6's pytree helper still builds one.
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # a fit shorter than log_every_n_steps: the doctor says what it means for the
    # diagnostics, in netscope's words (callbacks.Doctor), once
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    # a fit that ended before any validation: netscope.callbacks.FiniteModelCheckpoint
    # says so in one line, without a site-packages path
    r"`ModelCheckpoint\(monitor=.*\)` could not find the monitored key",
)
_NOISE_LOG_LINES = (
    "💡 Tip: For seamless cloud logging",  # Lightning advertising its LitLogger
    # netscope adds its own model summary (callbacks.console.ModelTable), on purpose.
    "Trainer already configured with model summary callbacks",
    # what the user cannot act on: which accelerators exist, the seed (in config.yaml),
    # how a fit ended (netscope's last line says), the test's checkpoint (its own line says)
    "GPU available:", "TPU available:", "HPU available:", "Seed set to ",
    "`Trainer.fit` stopped:", "Restoring states from the checkpoint path",
    "Loaded model weights from the checkpoint",
)


class _DropLines(logging.Filter):
    """Drop log records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def quiet_third_party_noise() -> None:
    """Silence, by message, the tips and deprecations every run would otherwise print.

    wandb's "The anonymous setting has no effect" comes from Lightning's WandbLogger
    passing ``anonymous=None``; it is silenced where the logger is configured
    (:func:`netscope.loggers.quiet_wandb_warnings`), not here.
    """
    for message in _NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    # Lightning logs through its two package loggers' own handlers; a filter on a handler
    # sees the records of every module below it.
    for name in ("lightning.pytorch", "lightning.fabric"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, _DropLines) for f in handler.filters):
                handler.addFilter(_DropLines(_NOISE_LOG_LINES))


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, quoted for a shell."""
    try:
        path = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        pass
    return shlex.quote(str(path))


def resume_command(run_dir: Path) -> str:
    """The command that continues the fit of ``run_dir`` from its ``last.ckpt``."""
    run = RunDir(run_dir)
    return (f"python main.py fit --config {_shown(run.file(RunDir.CONFIG))} "
            f"--ckpt_path {_shown(run.file(RunDir.LAST_CHECKPOINT))}")


def last_line(run_dir: Path | None, subcommand: str | None) -> str | None:
    """The closing line of a command, from the run's ``metrics.json``: how it ended, where
    its outputs are, and for an interrupted fit the command that resumes it. None when
    there is nothing to say (no run directory, or a failure: ``main`` prints the error)."""
    summary = RunDir(run_dir).summary() if run_dir is not None else None
    if summary is None:
        return None
    status, reason = summary.get("status"), summary.get("reason", "")
    where = f"outputs in {_shown(run_dir)}"
    can_resume = RunDir(run_dir).file(RunDir.LAST_CHECKPOINT).is_file()
    match status:
        case "completed":
            return f"netscope: {subcommand or 'run'} completed; {where}"
        case "diverged":
            return f"netscope: training diverged and was stopped ({reason}); {where}"
        case "interrupted" | "running":
            line = f"netscope: {subcommand or 'run'} interrupted at epoch {summary.get('epoch')}, step {summary.get('global_step')}; {where}"
            if subcommand == "fit" and can_resume:
                line += f"\n  resume it with: {resume_command(run_dir)}"
            return line
    return None


def print_last_line(run_dir: Path | None, subcommand: str | None) -> None:
    """Print :func:`last_line` (on the process the user started only, not DDP workers)."""
    line = last_line(run_dir, subcommand)
    if line and os.environ.get("LOCAL_RANK", "0") == "0":
        print(line, file=sys.stderr, flush=True)


def precision_advice(precision: object, accelerator: object) -> str | None:
    """A one-line note when a config asks for bf16 on a CPU that has no native bf16.

    Autocast to bf16 is a speed-up on CPUs with AVX512-BF16 or AMX, but on the others
    (AVX2 only) PyTorch emulates it: a convolution then runs about 20x slower than in fp32
    (measured on this project's 2-core AVX2 machines). Lightning says nothing about it.
    """
    import torch

    if not str(precision).startswith("bf16") or str(accelerator) not in ("cpu", "auto"):
        return None
    if str(accelerator) == "auto" and torch.cuda.is_available():
        return None
    if cpu_has_native_bf16():
        return None
    return (f"netscope: note: precision {precision} on this CPU ({torch.backends.cpu.get_cpu_capability()}, "
            f"no native bf16) is emulated: convolutions run about 20x slower than in 32-bit. "
            f"Add --trainer.precision 32-true for speed.")
