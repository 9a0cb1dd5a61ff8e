"""Any model, any data, any Lightning project: netscope sees inside networks it did not write.

The models are in ``tests/user_models.py``, written the way users write them (nothing of
netscope's imported): a plain ``nn.Module`` with functional ReLU, a deep sigmoid
``nn.Module`` and a ``LightningModule`` with its own steps and optimizer. Each runs through
``main.py`` and through a plain Lightning ``Trainer`` with ``default_callbacks()``.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning as L
import pytest

from netscope.callbacks import default_callbacks
from netscope.core.rundir import RunDir
from netscope.datamodules import CSVDataModule, MNISTDataModule
from netscope.doctor.__main__ import diagnose
from netscope.models import Supervised
from tests.helpers import CONFIGS, SHARED_DATA, make_mnist, metrics, run
from tests.user_models import DeepSigmoidNet, MyLitNet, PlainNet

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "20",
         "--trainer.limit_val_batches", "2", "--trainer.limit_test_batches", "2",
         "--trainer.log_every_n_steps", "5", "--trainer.logger", "false",
         "--trainer.enable_model_summary", "false"]


@pytest.fixture(scope="module")
def mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mnist(tmp_path_factory.mktemp("mnist"), train=1500, test=100)


def fit(mnist: Path, root: Path, *args: str) -> Path:
    return run("fit", "--config", str(CONFIGS / "mnist.yaml"), "--data.init_args.data_dir",
               str(mnist), *SHORT, *args, root=root)


def codes(findings: list[dict], severity: tuple[str, ...] = ("warning", "error")) -> set[tuple]:
    return {(f["code"], f["where"]) for f in findings if f["severity"] in severity}


def test_a_plain_module_with_functional_relu_trains_and_is_measured(mnist, tmp_path):
    run_dir = fit(mnist, tmp_path, "--model", "tests.user_models.PlainNet",
                  "--model.init_args.hidden", "32", "--optimizer.lr", "0.03")
    result = metrics(run_dir)
    assert result["status"] == "completed" and result["test/acc"] > 0.5
    # no activation modules: the weight layers' outputs are measured, named as the user did
    assert {"act_std/fc1", "act_dead/fc1", "grad_norm/fc1.weight"} <= set(result)
    assert codes(result["findings"]) == set()
    assert "dead_units" in result["checked"] and "vanishing_gradients" in result["checked"]
    assert "functions" in result["not_checked"]["saturated_units"]
    layers = RunDir(run_dir).layers()
    assert list(layers["activations"]) == ["fc1", "fc2", "fc3"]
    assert (run_dir / "activations.png").exists() and (run_dir / "signal_propagation.png").exists()


def test_a_very_negative_bias_kills_the_units_of_a_plain_module(mnist, tmp_path):
    run_dir = fit(mnist, tmp_path, "--model", "tests.user_models.PlainNet",
                  "--model.init_args.bias_init", "-10")
    findings = metrics(run_dir)["findings"]
    dead = [f for f in findings if f["code"] == "dead_units"]
    assert dead and dead[0]["where"] == "fc1" and dead[0]["step"] == 0, findings
    assert dead[0]["evidence"]["dead_fraction"]["fc1"] == 1.0


def test_a_deep_sigmoid_module_has_vanishing_gradients(mnist, tmp_path, capsys):
    run_dir = fit(mnist, tmp_path, "--model", "tests.user_models.DeepSigmoidNet",
                  "--model.init_args.depth", "12")
    result = metrics(run_dir)
    findings = result["findings"]
    vanishing = [f for f in findings if f["code"] == "vanishing_gradients" and f["step"] == 0]
    assert vanishing and vanishing[0]["where"].startswith("layers."), findings
    assert vanishing[0]["evidence"]["backward_ratio"] < 1e-2
    # Its tiny first step follows from the vanished gradient: no advice to raise the rate,
    # and the first-step check says why it did not judge.
    assert not [f for f in findings if f["code"] == "lr_too_low" and f["step"] == 0], findings
    assert "vanishes" in result["not_checked"]["first_step"]
    captured = capsys.readouterr()
    assert "Doctor (pre-flight check, step 0): 1 warning\n" in captured.out + captured.err


def test_a_lightning_module_keeps_its_own_steps_and_optimizer(mnist, tmp_path, capsys):
    run_dir = fit(mnist, tmp_path, "--model", "tests.user_models.MyLitNet")
    err = capsys.readouterr().err
    assert "MyLitNet has its own configure_optimizers; the config's torch.optim.SGD was not used" in err
    result = metrics(run_dir)
    assert result["status"] == "completed" and "train_loss" in result and "val_loss" in result
    preflight = RunDir(run_dir).preflight()
    assert preflight["optimizer"] == "Adam" and preflight["loss"] > 1.0  # its own loss, at init
    assert codes(result["findings"]) == set()
    assert list(run_dir.glob("checkpoints/*.ckpt"))  # monitored under the model's val_loss


def test_a_broken_lightning_module_gets_the_finding(mnist, tmp_path):
    run_dir = fit(mnist, tmp_path, "--model", "tests.user_models.MyLitNet",
                  "--model.init_args.bias_init", "-10")
    assert ("dead_units", "net.fc1") in codes(metrics(run_dir)["findings"])


@pytest.mark.parametrize(("make", "broken"), [
    (lambda: Supervised(PlainNet(hidden=32)), None),
    (lambda: Supervised(PlainNet(bias_init=-10.0)), ("dead_units", "fc1")),
    (lambda: Supervised(DeepSigmoidNet(depth=12)), ("vanishing_gradients", "layers.0")),
    (lambda: MyLitNet(), None),
    (lambda: MyLitNet(bias_init=-10.0), ("dead_units", "net.fc1")),
], ids=["plain", "plain-dead", "deep-sigmoid", "lightning", "lightning-dead"])
def test_default_callbacks_in_a_plain_lightning_script(mnist, tmp_path, make, broken):
    trainer = L.Trainer(max_epochs=1, limit_train_batches=20, limit_val_batches=2,
                        log_every_n_steps=5, callbacks=default_callbacks(),
                        default_root_dir=tmp_path, enable_progress_bar=False, logger=L.pytorch.loggers.CSVLogger(tmp_path))
    trainer.fit(make(), datamodule=MNISTDataModule(data_dir=str(mnist), batch_size=32))
    run_dir = Path(trainer.log_dir)
    result = json.loads((run_dir / "metrics.json").read_text())
    found = codes(result["findings"])
    assert (broken in found) if broken else not found, result["findings"]
    assert result["checked"] and "not_checked" in result
    # the same verdict afterwards, from the run's files
    assert codes([f.to_dict() for f in diagnose(run_dir)]) >= ({broken} if broken else set())


def test_a_short_fit_lists_what_it_did_not_check(mnist, tmp_path, capsys):
    run_dir = run("fit", "--config", str(CONFIGS / "mnist.yaml"), "--data.init_args.data_dir",
                  str(mnist), "--trainer.max_steps", "5", "--trainer.log_every_n_steps", "10",
                  "--trainer.limit_val_batches", "2", "--trainer.logger", "false",
                  root=tmp_path)
    result = metrics(run_dir)
    why = result["not_checked"]
    assert why["vanishing_gradients"] == ("the fit was 5 steps, shorter than log_every_n_steps "
                                          "10: the diagnostics never logged")
    assert "learning_rate" in why and "dead_units" in why
    assert "symmetry" in result["checked"]  # the pre-flight ran
    # the training loss was not logged because the fit was short, not because it had none
    assert why["not_learning"].startswith("the fit was 5 steps, shorter than log_every_n_steps")
    captured = capsys.readouterr()
    out = captured.out
    assert "Doctor (end of fit, step 5): no findings  (checked: " in out and "not checked: " in out
    # it ended before validating: one line of netscope's, not Lightning's warning from
    # site-packages
    assert "the fit logged no val/acc (no validation ran)" in captured.out + captured.err
    assert "could not find the monitored key" not in captured.out + captured.err


def test_a_linked_value_set_by_hand_is_an_error_that_names_the_data(mnist, tmp_path, capsys):
    for option, value in (("num_classes", "3"), ("task", "regression")):
        with pytest.raises(SystemExit):
            fit(mnist, tmp_path, f"--model.init_args.{option}", value)
        err = capsys.readouterr().err
        assert f"--model.init_args.{option} {value} disagrees with the data: MNISTDataModule" in err
        assert "Traceback" not in err


def test_an_unknown_model_names_the_valid_ones(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run("fit", "--config", str(CONFIGS / "mnist.yaml"), "--model", "ConvNett", root=tmp_path)
    err = capsys.readouterr().err
    assert "ConvNet, MLP, Supervised, TorchvisionNet" in err and "Did you mean ConvNet?" in err


def test_a_user_datamodule_and_a_plain_module_type_the_classes_once(tmp_path):
    # a LightningDataModule of the user's that declares nothing: the network's num_classes
    # (typed once) tells the classes
    module = tmp_path / "userdata.py"
    module.write_text(textwrap.dedent("""
        import lightning as L, torch
        from torch.utils.data import DataLoader, TensorDataset
        class Blobs(L.LightningDataModule):
            def __init__(self, data_dir: str = "", batch_size: int = 16):
                super().__init__()
                self.batch_size = batch_size
            def setup(self, stage):
                g = torch.Generator().manual_seed(0)
                y = torch.randint(0, 3, (300,), generator=g)
                x = torch.randn(300, 8, generator=g) + 3 * torch.nn.functional.one_hot(y, 8)
                self.data = TensorDataset(x, y)
            def train_dataloader(self):
                return DataLoader(self.data, batch_size=self.batch_size, shuffle=True)
            def val_dataloader(self):
                return DataLoader(self.data, batch_size=64)
        """))
    sys.path.insert(0, str(tmp_path))
    try:
        run_dir = run("fit", "--model", "tests.user_models.PlainNet", "--model.init_args.in_features",
                      "8", "--model.init_args.num_classes", "3", "--data", "userdata.Blobs",
                      "--optimizer", "torch.optim.Adam", "--optimizer.lr", "0.01",
                      "--trainer.max_epochs", "3", "--trainer.logger", "false",
                      "--trainer.log_every_n_steps", "5", root=tmp_path / "runs")
    finally:
        sys.path.remove(str(tmp_path))
    result = metrics(run_dir)
    assert result["status"] == "completed" and result["val/acc"] > 0.8
    assert "initial_loss" in result["checked"]  # the network's 3 classes give the chance loss


@pytest.mark.skipif(not (SHARED_DATA / "tabular").exists(), reason="no ../shared/data/tabular")
@pytest.mark.parametrize(("table", "task", "metric"), [("wine.csv", "classification", "test/acc"),
                                                       ("diabetes.csv", "regression", "test/mae")])
def test_tables_train_as_classification_or_regression(tmp_path, table, task, metric):
    run_dir = run("fit", "--config", str(CONFIGS / "tabular.yaml"), "--data.init_args.data_dir",
                  str(SHARED_DATA / "tabular" / table), "--trainer.max_epochs", "3",
                  "--trainer.logger", "false", root=tmp_path)
    result = metrics(run_dir)
    assert result["status"] == "completed" and metric in result
    config = RunDir(run_dir).config()
    assert config["data"]["class_path"].endswith("CSVDataModule")
    hparams = json.loads(json.dumps(RunDir(run_dir).preflight()["context"]))
    assert hparams["task"] == task


def test_a_csv_table_is_encoded_standardized_and_split(tmp_path):
    table = tmp_path / "pets.csv"
    rows = ["weight,colour,kind"] + [f"{3 + i % 7},{['red', 'blue'][i % 2]},{['cat', 'dog'][i % 3 == 0]}"
                                     for i in range(60)]
    table.write_text("\n".join(rows) + "\n")
    data = CSVDataModule(str(table))
    assert data.task == "classification" and data.class_names == ["cat", "dog"]
    assert data.input_shape == (3,)  # weight, and colour one-hot as blue, red
    data.setup("fit")
    train, test = data.splits["train"], data.splits["test"]
    assert len(train[1]) + len(data.splits["val"][1]) + len(test[1]) == 60
    assert abs(float(train[0][:, 0].mean())) < 0.3  # standardized with the training rows
    with pytest.raises(Exception, match="hold text"):
        CSVDataModule(str(table), categorical="refuse")
    with pytest.raises(Exception, match="no such column"):
        CSVDataModule(str(table), target="size")


def test_a_user_project_with_its_own_models_core_and_callbacks(tmp_path):
    """The installed names do not clash with a user's project, and the installed command
    imports the user's modules from the current folder."""
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "core").mkdir()
    (project / "models" / "__init__.py").write_text("")
    (project / "models" / "activations.py").write_text("MINE = True\n")
    (project / "core" / "__init__.py").write_text("")
    (project / "callbacks.py").write_text("USER_CALLBACKS = True\n")
    shutil.copy(ROOT / "tests" / "user_models.py", project / "mynet.py")
    mnist = make_mnist(tmp_path / "data", train=600, test=60)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    check = subprocess.run(
        [sys.executable, "-c", "import callbacks, models.activations as a; "
         "from netscope.callbacks import default_callbacks; "
         "assert callbacks.USER_CALLBACKS and a.MINE and len(default_callbacks()) > 5; print('ok')"],
        cwd=project, capture_output=True, text=True, env=env)
    assert check.stdout.strip() == "ok", check.stderr
    command = shutil.which("netscope")
    assert command, "the install puts a netscope command on PATH"
    done = subprocess.run(
        [command, "fit", "--config", str(CONFIGS / "mnist.yaml"), "--model", "mynet.PlainNet",
         "--data.init_args.data_dir", str(mnist), *SHORT, "--trainer.default_root_dir", "runs"],
        cwd=project, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    (run_dir,) = (project / "runs").iterdir()
    assert metrics(run_dir)["status"] == "completed"


@pytest.mark.parametrize(("args", "said"), [
    (["--model", "torch.nn.Linear"], "--model torch.nn.Linear needs in_features, out_features"),
    (["--model", "torch.nn.Linear", "--model.init_args.in_features", "784",
      "--model.init_args.out_features", "10"],
     "Linear.forward failed on a batch of inputs of shape ("),
    (["--model", "collections.OrderedDict"], "is not a class --model knows"),
], ids=["missing-arguments", "wrong-input-shape", "not-a-module"])
def test_a_model_that_cannot_work_says_why_in_one_paragraph(mnist, tmp_path, capsys, args, said):
    with pytest.raises(SystemExit) as stopped:
        fit(mnist, tmp_path, *args, "--data.init_args.batch_size", "32")
    err = capsys.readouterr().err
    assert stopped.value.code == 1 and said in err and "Traceback" not in err, err
