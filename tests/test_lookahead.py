"""Lookahead: the update rule, its schedule, the end of training on the slow weights, and
resuming from a checkpoint."""

from pathlib import Path

import pytest
import torch
from torch import nn

from netscope.callbacks import Lookahead
from netscope.cli import NetscopeCLI
from netscope.core.errors import UserError
from tests.helpers import CONFIGS, run

#: airbench94's SGD recipe, the CIFAR-10 config with a Lookahead.
SGD_RECIPE = CONFIGS.parent / "benchmarks" / "cifar_sgd.yaml"


def test_update_pulls_the_slow_copy_toward_the_weights_and_sets_the_weights_to_it() -> None:
    module = nn.BatchNorm1d(3)
    with torch.no_grad():
        module.weight.fill_(4.0)
        module.running_mean.fill_(8.0)
    lookahead = Lookahead()
    lookahead.slow = {name: torch.zeros_like(value)
                      for name, value in Lookahead._averaged(module).items()}
    lookahead.update(module, decay=0.75)
    assert torch.equal(module.weight, torch.full((3,), 1.0))       # 0.75 * 0 + 0.25 * 4
    assert torch.equal(module.running_mean, torch.full((3,), 2.0))  # buffers too
    assert torch.equal(lookahead.slow["weight"], module.weight)
    assert "num_batches_tracked" not in lookahead.slow             # counters are not averaged


def test_the_pull_grows_from_zero_to_max_decay() -> None:
    lookahead = Lookahead(max_decay=0.8, power=3.0)
    lookahead.total_steps = 100
    assert lookahead.decay(0) == 0.0
    assert lookahead.decay(50) == pytest.approx(0.8 * 0.125)
    assert lookahead.decay(100) == lookahead.decay(150) == pytest.approx(0.8)
    with pytest.raises(UserError):
        Lookahead(max_decay=1.0)


def _cli(data: Path, root: Path, *args: str) -> NetscopeCLI:
    return NetscopeCLI(["--config", str(SGD_RECIPE), "--data.init_args.data_dir",
                        str(data), "--data.init_args.batch_size", "4", "--trainer.logger", "false",
                        "--trainer.enable_model_summary", "false",
                        "--trainer.default_root_dir", str(root),
                        "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
                        # the config's last callback is its Lookahead
                        "--trainer.callbacks.every_n_steps", "2",
                        "--trainer.callbacks.every_n_samples", "null",
                        # no LR schedule: the resumed fit is longer than the first
                        "--lr_scheduler", "null", *args], run=False)


def _lookahead(cli: NetscopeCLI) -> Lookahead:
    return next(c for c in cli.trainer.callbacks if isinstance(c, Lookahead))


def _same_as_slow(model: nn.Module, slow: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(model.state_dict()[name], value) for name, value in slow.items())


def test_training_ends_on_the_slow_weights_and_a_resumed_fit_goes_on(tiny_cifar: Path,
                                                                      tmp_path: Path) -> None:
    cli = _cli(tiny_cifar, tmp_path / "runs", "--trainer.max_epochs", "1")
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    lookahead = _lookahead(cli)
    # Updates after steps 2 and 3 (the last): step 3's weights were replaced by the slow copy.
    assert _same_as_slow(cli.model, lookahead.slow)
    checkpoint_path = cli.trainer.checkpoint_callback.last_model_path or \
        cli.trainer.checkpoint_callback.best_model_path
    saved = torch.load(checkpoint_path, weights_only=False)
    saved_slow = next(v["slow"] for k, v in saved["callbacks"].items() if "Lookahead" in k)
    assert _same_as_slow(cli.model, saved_slow)

    resumed = _cli(tiny_cifar, tmp_path / "runs", "--trainer.max_epochs", "2")
    resumed.trainer.fit(resumed.model, datamodule=resumed.datamodule, ckpt_path=checkpoint_path)
    assert resumed.trainer.global_step == 6
    assert _same_as_slow(resumed.model, _lookahead(resumed).slow)
    assert not _same_as_slow(resumed.model, saved_slow)  # it trained on from there


def test_a_fit_of_unknown_length_is_a_clear_error(tiny_cifar: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        run("fit", "--config", str(SGD_RECIPE), "--data.init_args.data_dir",
            str(tiny_cifar), "--data.init_args.batch_size", "4", "--trainer.logger", "false",
            "--trainer.max_epochs", "-1", "--trainer.max_time", "00:00:01:00",
            "--lr_scheduler", "null",  # past the schedule's own check
            root=tmp_path / "runs")
    assert "set trainer.max_epochs or trainer.max_steps" in capsys.readouterr().err
