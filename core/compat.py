"""The one door to other libraries' private APIs.

netscope uses a handful of names that Lightning, wandb, torch and argparse keep private,
each where no public way does the job. They all live here, each with why, and
``tests/test_compat.py`` fails loudly when an installed version no longer has one, so an
upgrade breaks a test, not a user's run. No other module of netscope touches a third-party
name that starts with an underscore.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

import torch
from lightning.pytorch.cli import LightningCLI
from torch import nn

if TYPE_CHECKING:
    from lightning.pytorch import Trainer
    from lightning.pytorch.loggers import CSVLogger, WandbLogger


# ----------------------------------------------------------------------------- Lightning
def logger_step(trainer: Trainer) -> int:
    """The step Lightning stamps on the metrics logged during the current training batch.

    It is constant through all hooks of one batch, while ``trainer.global_step`` moves on
    inside the optimizer step; Lightning keeps it on its fit loop and has no public name for
    it (its own ``LearningRateMonitor`` reads the same attribute).
    """
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def started_wandb_run(logger: WandbLogger) -> Any:
    """The W&B run a ``WandbLogger`` has started, or ``None``: its public ``experiment``
    property would start one, which must not happen just to look or to finish it."""
    return logger._experiment


def wandb_init_arguments(logger: WandbLogger) -> dict[str, Any] | None:
    """What the ``WandbLogger`` will pass to ``wandb.init`` (it has no public accessor; read
    to drop Lightning's ``anonymous=None``, which makes wandb warn on every run)."""
    init = getattr(logger, "_wandb_init", None)
    return init if isinstance(init, dict) else None


def csv_writer_started(logger: CSVLogger) -> bool:
    """Whether a ``CSVLogger`` has created its writer (``experiment`` would create it)."""
    return logger._experiment is not None


def set_csv_writer(logger: CSVLogger, writer: Any) -> None:
    """Give a ``CSVLogger`` the writer it will use (a resumed history's), creating its
    folder first as Lightning's own ``experiment`` property does."""
    logger._fs.makedirs(logger.root_dir, exist_ok=True)
    logger._experiment = writer


#: The ``ExperimentWriter`` method that deletes an existing ``metrics.csv`` when it starts;
#: a resumed history overrides it to keep the rows logged before its checkpoint.
CSV_WRITER_START_HOOK = "_check_log_dir_exists"


# ----------------------------------------------------------------------------- LightningCLI
#: The LightningCLI methods :class:`CLIHooks` replaces (their version test checks them).
CLI_PRIVATE_HOOKS = ("_parse_ckpt_path", "_run_subcommand")


class CLIHooks(LightningCLI):
    """``LightningCLI`` with its two private steps that netscope replaces given public names.

    ``_parse_ckpt_path`` reads ``--ckpt_path``'s hyper-parameters into the config, in the
    form LightningCLI's own checkpoints have: netscope checks the checkpoint and reads its
    hyper-parameters itself (:meth:`read_checkpoint_hparams`). ``_run_subcommand`` runs the
    command: netscope's lifecycle runs it instead (:meth:`run_subcommand`). LightningCLI has
    no public hook at either point.
    """

    def read_checkpoint_hparams(self) -> None:
        """Called right after parsing, to take what the checkpoint says into the config."""

    def run_subcommand(self, subcommand: str) -> None:
        """Run the parsed subcommand."""
        raise NotImplementedError

    def _parse_ckpt_path(self) -> None:
        self.read_checkpoint_hparams()

    def _run_subcommand(self, subcommand: str) -> None:
        self.run_subcommand(subcommand)


# ----------------------------------------------------------------------------- argparse
def parser_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The actions (options) of a parser: argparse lists them only in ``_actions``."""
    return list(parser._actions)


def subcommand_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """``{name: parser}`` of a jsonargparse parser's subcommands (empty when it has none)."""
    action = getattr(parser, "_subcommands_action", None)
    return dict(action.choices) if action is not None else {}


# ----------------------------------------------------------------------------- torch
def without_hooks(module: nn.Module) -> nn.Module:
    """``module`` with every forward, forward-pre and backward hook removed, in place (a
    throw-away copy must not run other callbacks' hooks). torch removes a hook only through
    the handle its registration returned, which the copy does not have."""
    for part in module.modules():
        part._forward_hooks.clear()
        part._forward_pre_hooks.clear()
        part._backward_hooks.clear()
    return module


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); torch says so only
    through an underscore operator."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


# ----------------------------------------------------------------------------- LitServe
def quiet_lit_server() -> type:
    """``litserve.LitServer`` whose worker monitor ends quietly when the server shuts down.

    LitServe's monitor thread polls a manager-backed event that a stop by signal never sets
    and the shutdown then closes, so the thread logs a crash traceback. A local event,
    already set, ends its loop instead; LitServe has no public switch for its monitor.
    (litserve is pinned below 0.3 in pyproject.toml for this hook.)
    """
    import threading

    import litserve

    class QuietLitServer(litserve.LitServer):
        def _perform_graceful_shutdown(self, *args: Any, **kwargs: Any) -> None:
            stopping = threading.Event()
            stopping.set()
            self._shutdown_event = stopping
            super()._perform_graceful_shutdown(*args, **kwargs)

    return QuietLitServer


# ----------------------------------------------------------------------------- wandb
def netrc_api_key(host: str) -> str | None:
    """The W&B API key the netrc file holds for ``host``, found as ``wandb.init`` finds it
    (wandb's own lookup, so its host matching is exactly wandb's)."""
    from wandb.sdk.lib.wbauth import read_netrc_auth

    return read_netrc_auth(host=host)


def wandb_settings_files(settings: Any) -> dict[str, Any]:
    """The values of wandb's settings files (global and ``wandb offline``'s workspace file)
    that ``settings`` would load, as wandb reads them."""
    return settings.read_system_settings().all()
