"""The command line as a user types it: configs, swaps, optimizers, run directories, errors."""

import json

import pytest
import torch
from lightning.pytorch import Callback

from main import main
from netscope.callbacks.run_summary import parameter_checksum
from netscope.models import MLP
from tests.helpers import CONFIGS, FAST, SHARED_DATA, metrics, requires_shared, run

MNIST = ["--config", str(CONFIGS / "mnist.yaml"), "--data.init_args.data_dir", str(SHARED_DATA / "mnist")]
QUIET = ["--trainer.logger", "false"]


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow),
                                  pytest.param(2, marks=pytest.mark.slow)])
def test_xor_reaches_full_accuracy_across_seeds(tmp_path, seed):
    run_dir = run("fit", "--config", str(CONFIGS / "xor.yaml"), "--seed_everything", str(seed),
                  root=tmp_path / "runs")
    assert metrics(run_dir)["test/acc"] == 1.0


def test_xor_as_regression_reports_mse_and_mae(tmp_path):
    run_dir = run("fit", "--config", str(CONFIGS / "xor.yaml"), "--data.init_args.task", "regression",
                  "--trainer.max_epochs", "2", root=tmp_path / "runs")
    result = metrics(run_dir)
    assert {"test/mse", "test/mae", "val/mse"} <= result.keys()
    assert "test/acc" not in result


@requires_shared("mnist")
def test_fit_leaves_a_complete_run_directory(tmp_path):
    run_dir = run("fit", *MNIST, *FAST, *QUIET, root=tmp_path / "runs")
    result = metrics(run_dir)
    assert result["status"] == "completed"
    assert {"epoch", "global_step", "wall_time_s", "init_checksum"} <= result.keys()
    assert {"train/loss", "val/acc", "val/loss", "test/acc", "test/loss"} <= result.keys()
    assert result["global_step"] == 4
    assert (run_dir / "config.yaml").exists()
    # The best checkpoint, and last.ckpt to resume from (every fit keeps one).
    assert len(list((run_dir / "checkpoints").glob("epoch*.ckpt"))) == 1
    assert (run_dir / "checkpoints" / "last.ckpt").exists()
    assert (run_dir / "csv" / "metrics.csv").exists()


@requires_shared("mnist")
def test_two_runs_get_two_directories(tmp_path):
    first = run("fit", *MNIST, *FAST, *QUIET, root=tmp_path / "runs")
    second = run("fit", *MNIST, *FAST, *QUIET, root=tmp_path / "runs")
    assert first != second
    assert metrics(first)["status"] == metrics(second)["status"] == "completed"


@requires_shared("mnist")
def test_test_after_fit_can_be_turned_off(tmp_path):
    run_dir = run("fit", *MNIST, *FAST, *QUIET, "--test_after_fit", "false", root=tmp_path / "runs")
    assert "test/acc" not in metrics(run_dir)


@requires_shared("mnist")
@pytest.mark.parametrize("optimizer", [
    ["--optimizer", "torch.optim.SGD", "--optimizer.lr", "0.01"],
    ["--optimizer", "torch.optim.SGD", "--optimizer.lr", "0.01", "--optimizer.momentum", "0.9"],
    ["--optimizer", "torch.optim.SGD", "--optimizer.lr", "0.01", "--optimizer.momentum", "0.9",
     "--optimizer.nesterov", "true"],
    ["--optimizer", "torch.optim.Adagrad", "--optimizer.lr", "0.01"],
    ["--optimizer", "torch.optim.RMSprop", "--optimizer.lr", "0.001"],
    ["--optimizer", "torch.optim.Adam", "--optimizer.lr", "0.001"],
    ["--optimizer", "torch.optim.AdamW", "--optimizer.lr", "0.001"],
], ids=["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"])
def test_every_optimizer_builds_and_steps(tmp_path, optimizer):
    run_dir = run("fit", *MNIST, *FAST, *QUIET, "--test_after_fit", "false", *optimizer,
                  "--checkpoint.save_last", "true", root=tmp_path / "runs")
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    optimizer_state = checkpoint["optimizer_states"][0]
    assert optimizer_state["param_groups"][0]["lr"] == float(optimizer[3])
    assert metrics(run_dir)["global_step"] == 4
    # The weights moved away from their initial values.
    trained = MLP.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert parameter_checksum(trained) != metrics(run_dir)["init_checksum"]


@requires_shared("mnist")
@pytest.mark.parametrize("swap", [
    ["--model", "netscope.models.ConvNet", "--model.init_args.widths", "[8, 16]"],
    ["--data", "netscope.datamodules.FashionMNISTDataModule",
     "--data.init_args.data_dir", str(SHARED_DATA / "fashion-mnist")],
], ids=["convnet-on-mnist", "mnist-config-on-fashion-mnist"])
def test_classes_can_be_swapped_on_the_command_line(tmp_path, swap):
    run_dir = run("fit", *MNIST, *FAST, *QUIET, *swap, root=tmp_path / "runs")
    assert metrics(run_dir)["status"] == "completed"


def test_mlp_on_cifar_class_folders(tmp_path, tiny_cifar, capsys):
    mlp = ["--config", str(CONFIGS / "cifar.yaml"), "--model", "netscope.models.MLP",
           "--data.init_args.data_dir", str(tiny_cifar), "--data.init_args.batch_size", "8",
           "--trainer.precision", "32", *FAST, *QUIET]
    # The config's optimizer, MuonSGD, takes the MLP's hidden Linear layer; its first layer and
    # head stay with SGD.
    run_dir = run("fit", *mlp, root=tmp_path / "runs")
    assert metrics(run_dir)["status"] == "completed", capsys.readouterr().err
    checkpoint = torch.load(next((run_dir / "checkpoints").glob("*.ckpt")), weights_only=False)
    groups = checkpoint["optimizer_states"][0]["param_groups"]
    assert [g["orthogonalize"] for g in groups] == [False, True]
    assert len(groups[1]["params"]) == 1  # the one hidden Linear of hidden_sizes [128, 64]


def test_bad_choice_lists_the_valid_ones_without_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(CONFIGS / "xor.yaml"), "--model.init_args.activation", "nope"])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert "nope" in err and "leaky_relu" in err and "tanh" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("option, value", [("val_fraction", "1.5"), ("batch_size", "0"),
                                           ("eval_batch_size", "-5")])
def test_out_of_range_value_gets_a_clear_message(tmp_path, capsys, option, value):
    """A batch size of 0 used to end in a traceback from inside the fit (the loader)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(CONFIGS / "mnist.yaml"), f"--data.init_args.{option}", value,
              *QUIET, "--trainer.default_root_dir", str(tmp_path / "runs")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert option in err and value in err and "Traceback" not in err


def test_missing_data_offline_gets_a_clear_message(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(CONFIGS / "mnist.yaml"), "--data.init_args.data_dir", str(missing),
              *QUIET, "--trainer.default_root_dir", str(tmp_path / "runs")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert str(missing) in err and "MNIST/raw" in err and "data_dir" in err
    assert "Traceback" not in err
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert metrics(run_dir)["status"] == "failed"


class InterruptAfterTwoSteps(Callback):
    """Presses Ctrl+C for the test: raises KeyboardInterrupt during training."""

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == 2:
            raise KeyboardInterrupt


def test_interrupted_run_records_its_status(tmp_path):
    with pytest.raises(SystemExit):  # Lightning exits 1 after a graceful shutdown
        main(["fit", "--config", str(CONFIGS / "xor.yaml"), "--trainer.callbacks+=tests.test_cli.InterruptAfterTwoSteps",
              "--trainer.default_root_dir", str(tmp_path / "runs")])
    (run_dir,) = (tmp_path / "runs").iterdir()
    result = json.loads((run_dir / "metrics.json").read_text())
    assert result["status"] == "interrupted" and "KeyboardInterrupt" in result["reason"]
    assert result["global_step"] == 2


def test_bf16_on_a_cpu_without_native_bf16_gets_a_note() -> None:
    from netscope.console import precision_advice

    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert (precision_advice("bf16-mixed", "cpu") is None) == native
    assert precision_advice("32-true", "cpu") is None
    if not native:
        assert "--trainer.precision 32-true" in precision_advice("bf16-mixed", "auto")
