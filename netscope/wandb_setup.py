"""Weights & Biases settings decided before the logger starts."""

import netrc
import os
from urllib.parse import urlparse

from jsonargparse import Namespace
from lightning.pytorch.utilities import rank_zero_info


def has_wandb_credentials() -> bool:
    """Whether ``wandb.init`` would find an API key (environment or ``~/.netrc``)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def configure_wandb(init_args: Namespace, run_name: str) -> None:
    """Name the run after the run directory unless named, and go offline by itself when
    there are no credentials (``wandb.init`` would otherwise stop with "No API key")."""
    if not init_args.get("name"):
        init_args.name = run_name
    if not init_args.get("offline") and not os.environ.get("WANDB_MODE") and not has_wandb_credentials():
        init_args.offline = True
        rank_zero_info(
            f"W&B: no credentials found, so this run is logged offline in {init_args.save_dir}/wandb. "
            f"Sync it later with `wandb sync {init_args.save_dir}/wandb/offline-run-*`, "
            f"or view it now with `wandb leet {init_args.save_dir}`."
        )
