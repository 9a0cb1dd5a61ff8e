"""The private names of other libraries that netscope uses (all in ``core/compat.py``) still
exist in the installed versions: an upgrade that removes one fails here, loudly, before any
user's run meets it."""

import argparse

from jsonargparse import ArgumentParser
from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from torch import nn

from netscope.core import compat


def test_lightning_keeps_the_logged_step_on_its_fit_loop():
    trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False)
    assert compat.logger_step(trainer) == 0


def test_lightning_cli_still_has_the_two_steps_netscope_replaces():
    for name in compat.CLI_PRIVATE_HOOKS:
        assert callable(getattr(LightningCLI, name, None)), f"LightningCLI.{name} is gone"


def test_the_cli_hooks_are_called_by_lightning_cli(tmp_path):
    called = []

    class Probe(compat.CLIHooks):
        def read_checkpoint_hparams(self) -> None:
            called.append("hparams")

        def instantiate_classes(self) -> None:
            pass

        def run_subcommand(self, subcommand: str) -> None:
            called.append(subcommand)

    Probe(args=["validate", "--model", "lightning.pytorch.demos.boring_classes.BoringModel"],
          save_config_callback=None)
    assert called == ["hparams", "validate"]


def test_loggers_keep_what_netscope_reads_without_starting_a_run(tmp_path):
    wandb = WandbLogger(save_dir=str(tmp_path), mode="disabled")
    assert compat.started_wandb_run(wandb) is None  # nothing started by looking
    assert isinstance(compat.wandb_init_arguments(wandb), dict)
    csv = CSVLogger(tmp_path, name="csv", version="")
    assert compat.csv_writer_started(csv) is False
    compat.set_csv_writer(csv, ExperimentWriter(str(tmp_path / "csv")))
    assert compat.csv_writer_started(csv)
    assert callable(getattr(ExperimentWriter, compat.CSV_WRITER_START_HOOK, None))


def test_argparse_and_jsonargparse_expose_their_actions_and_subcommands():
    parser = ArgumentParser()
    sub = ArgumentParser()
    sub.add_argument("--x", type=int, default=1)
    parser.add_subcommands().add_subcommand("go", sub)
    assert set(compat.subcommand_parsers(parser)) == {"go"}
    assert "--x" in [o for a in compat.parser_actions(sub) for o in a.option_strings]
    assert compat.parser_actions(argparse.ArgumentParser())


def test_torch_hooks_can_be_cleared_and_bf16_support_read():
    layer = nn.Linear(2, 2)
    layer.register_forward_hook(lambda *args: None)
    layer.register_forward_pre_hook(lambda *args: None)
    compat.without_hooks(layer)
    assert not layer._forward_hooks and not layer._forward_pre_hooks
    assert isinstance(compat.cpu_has_native_bf16(), bool)


def test_wandb_reads_netrc_and_settings_files(tmp_path, monkeypatch):
    import wandb

    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert compat.netrc_api_key("https://api.wandb.ai") is None
    settings = wandb.Settings(quiet=True)
    settings.settings_system = str(tmp_path / "settings")
    assert isinstance(compat.wandb_settings_files(settings), dict)


def test_litserve_keeps_its_shutdown_hook():
    import litserve

    assert callable(getattr(litserve.LitServer, "_perform_graceful_shutdown", None))
    assert issubclass(compat.quiet_lit_server(), litserve.LitServer)
