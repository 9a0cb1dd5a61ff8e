"""Weights & Biases settings decided before the logger starts.

``wandb.init`` without credentials either prompts (on a terminal) or stops with "No API
key configured". netscope decides first, from what ``wandb.init`` itself would read: a
run goes offline by itself when there are no credentials, an explicit choice (the
logger's ``offline``/``mode``, ``WANDB_MODE``, ``wandb offline``) is kept, and an offline
run prints one notice saying where it lives and how to view and sync it, once the run
really exists (a command that fails before never mentions W&B). A resumed fit continues
the W&B run of its run directory.
"""

import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jsonargparse import Namespace
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from netscope.core.compat import netrc_api_key, started_wandb_run, wandb_settings_files
from netscope.core.errors import UserError

Mode = Literal["online", "offline", "disabled", "shared"]
LogModel = bool | Literal["all"]

# wandb's older names for its modes, still accepted in WANDB_MODE.
_MODE_ALIASES = {"dryrun": "offline", "run": "online"}
_MODES = ("online", "offline", "disabled", "shared")


@dataclass(frozen=True)
class WandbEnvironment:
    """What ``wandb.init`` would find on this machine, before any logger setting."""

    mode: str | None  # WANDB_MODE, else a settings file (``wandb offline``); None if neither
    mode_source: str  # where ``mode`` came from, in words for the notice
    base_url: str  # the W&B server credentials are looked up for
    has_credentials: bool


@dataclass(frozen=True)
class WandbChoice:
    """What reaches ``wandb.init``: the mode, why, and whether checkpoints are uploaded."""

    mode: Mode
    reason: str
    log_model: LogModel


def decide(
    requested: str | None, log_model: LogModel, environment: WandbEnvironment
) -> WandbChoice:
    """Choose the run's mode: the logger's own setting, else the environment's, else online
    with credentials and offline without.

    Args:
        requested: the logger's ``mode`` (``"offline"`` for ``offline: true``), or None.
        log_model: the logger's ``log_model``; turned off unless the run is online, since
            ``WandbLogger`` refuses it offline and there is nowhere to upload to.
        environment: what wandb would read from the environment (:func:`wandb_environment`).

    Raises:
        UserError: an unknown mode, or online asked for explicitly without credentials.
    """
    if requested:
        mode, reason = requested, f"the logger's settings say mode={requested}"
    elif environment.mode:
        mode, reason = environment.mode, f"set by {environment.mode_source}"
    elif environment.has_credentials:
        mode, reason = "online", "W&B credentials found"
    else:
        mode, reason = "offline", "no credentials found (no WANDB_API_KEY, no ~/.netrc entry)"
    mode = _MODE_ALIASES.get(mode, mode)
    if mode not in _MODES:
        raise UserError(f"Unknown W&B mode {mode!r} ({reason}); use one of {', '.join(_MODES)}.")
    if mode in ("online", "shared") and not environment.has_credentials:
        raise UserError(
            f"W&B is set to {mode} ({reason}) but no credentials were found for the W&B "
            f"server {environment.base_url}. Run `wandb login` or set WANDB_API_KEY; or drop the "
            "online setting and the run is logged offline, to sync later with `wandb sync`."
        )
    return WandbChoice(mode, reason, log_model if mode in ("online", "shared") else False)


def wandb_environment() -> WandbEnvironment:
    """Read the environment as ``wandb.init`` does: its settings files (global, and the
    workspace file ``wandb offline`` writes), then ``WANDB_*`` variables, then credentials.

    Uses wandb's own ``Settings`` loaders and netrc lookup rather than re-reading the files
    by hand, so the server (``WANDB_BASE_URL``, ``wandb login --host``, wandb's default)
    and the netrc host matching are exactly wandb's.
    """
    import wandb

    settings = wandb.Settings(quiet=True)  # quiet: no "Loading settings from ..." line
    config_dir = os.environ.get("WANDB_CONFIG_DIR") or "~/.config/wandb"
    settings.settings_system = str(Path(config_dir).expanduser() / "settings")
    files = wandb_settings_files(settings)
    settings.update_from_system_settings()
    settings.update_from_env_vars(dict(os.environ))

    if os.environ.get("WANDB_MODE"):
        mode = os.environ["WANDB_MODE"]
        source = f"WANDB_MODE={mode}"
    else:
        mode = files.get("mode")
        source = f"mode = {mode} in a wandb settings file (`wandb offline`)"
    try:
        netrc_key = netrc_api_key(settings.base_url)
    except wandb.errors.AuthenticationError as error:
        raise UserError(
            f"The W&B API key in your netrc file is not valid ({error}). "
            "Run `wandb login --relogin`, or set WANDB_MODE=offline."
        ) from None
    credentials = bool(settings.api_key or settings.identity_token_file or netrc_key)
    return WandbEnvironment(mode or None, source, settings.base_url, credentials)


def configure_wandb(init_args: Namespace, run_name: str, resume: bool = False) -> str | None:
    """Set the ``WandbLogger`` init arguments from :func:`decide`, before it is built.

    Names the run after the run directory unless named; passes the mode to ``wandb.init``
    as ``mode`` (``WandbLogger(offline=True)`` would instead set ``WANDB_MODE`` for the
    whole process, turning later runs in the same process offline); turns ``log_model``
    off unless online; and, offline, keeps the run's own banner and footer (which say the
    same as netscope's notice at more length) quiet: run setting ``silent`` mutes only
    those, wandb's warnings and errors still show. ``resume``: continue the W&B run found
    in ``save_dir`` (same id: one unbroken history), unless an id is set.

    Returns:
        The offline notice to print once the run has started (:class:`WandbNotice`), or None.
    """
    if not init_args.get("name"):
        init_args.name = run_name
    if resume and not init_args.get("id") and not init_args.get("version"):
        init_args.id = previous_run_id(Path(init_args.save_dir) / "wandb")
    requested = "offline" if init_args.get("offline") else init_args.get("mode")
    environment = wandb_environment()
    choice = decide(requested, init_args.get("log_model", False), environment)
    init_args.offline = False
    init_args.mode = choice.mode
    init_args.log_model = choice.log_model
    if choice.mode == "offline":
        if init_args.get("settings") is None or isinstance(init_args.settings, dict):
            init_args.settings = {"silent": True, **(init_args.get("settings") or {})}
        wandb_dir = Path(init_args.save_dir).absolute() / "wandb"
        return offline_notice(choice, wandb_dir, login=not environment.has_credentials)
    return None


def previous_run_id(wandb_dir: Path) -> str | None:
    """The id of the latest W&B run under ``wandb_dir`` (wandb names a run's folder
    ``[offline-]run-<date>_<time>-<id>``), or None when there is none."""
    runs = sorted(wandb_dir.glob("*run-*_*-*")) if wandb_dir.is_dir() else []
    for folder in reversed(runs):
        match = re.fullmatch(r"(?:offline-)?run-\d{8}_\d{6}-(\w+)", folder.name)
        if match and folder.is_dir():
            return match.group(1)
    return None


class WandbNotice(Callback):
    """Print the offline notices once the W&B run they describe exists (the config saver
    starts it in ``setup``), so a command that fails before never mentions W&B."""

    def __init__(self, notices: list[str]) -> None:
        self.notices = notices

    def _print(self, trainer: Trainer) -> None:
        started = any(isinstance(logger, WandbLogger) and started_wandb_run(logger) is not None
                      for logger in trainer.loggers)
        if started and self.notices:
            print_notice("\n".join(self.notices))
            self.notices = []

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._print(trainer)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._print(trainer)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._print(trainer)

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._print(trainer)


@rank_zero_only
def print_notice(text: str) -> None:
    """Print to stderr, as wandb prints its own messages, and once: on global rank zero."""
    print(text, file=sys.stderr, flush=True)


def offline_notice(choice: WandbChoice, wandb_dir: Path, login: bool) -> str:
    """The one notice an offline run prints: why, where, and the commands to use
    (``login``: syncing needs a ``wandb login`` first)."""
    where = shlex.quote(str(wandb_dir))
    login_first = "wandb login && " if login else ""
    return (
        f"W&B is offline: {choice.reason}.\n"
        f"  This run is saved in {wandb_dir}\n"
        f"  view it now:    wandb leet {where}\n"
        f"  sync it later:  {login_first}wandb sync {where}"
    )

