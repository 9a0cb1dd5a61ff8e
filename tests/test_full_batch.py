"""Full-batch gradient descent on a small subset, as the edge-of-stability study runs it:
``train_size`` keeps a fixed, class-balanced subset whatever the seed; ``loss: mse`` trains
a classifier on the squared error against one-hot targets, and its checkpoint still
predicts and exports."""

import csv
import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from netscope.datamodules import MNISTDataModule
from netscope.models import MLP, Supervised
from netscope.models.losses import OneHotMSELoss
from tests.helpers import CONFIGS, make_mnist, metrics, run
from tests.test_bad_input import fails


@pytest.fixture(scope="module")
def mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mnist(tmp_path_factory.mktemp("mnist"), train=1500, test=100)


def test_mse_is_the_squared_error_against_one_hot_targets():
    outputs, targets = torch.randn(6, 10), torch.tensor([0, 3, 9, 1, 1, 5])
    model = MLP(num_classes=10, input_shape=(1, 28, 28), loss="mse")
    expected = ((outputs - F.one_hot(targets, 10).float()) ** 2).mean()
    assert torch.allclose(model.loss_fn(outputs, targets), expected)
    smoothed = F.one_hot(targets, 10).float() * 0.9 + 0.01
    assert torch.allclose(OneHotMSELoss(0.1)(outputs, targets), ((outputs - smoothed) ** 2).mean())
    assert isinstance(MLP(loss="default").loss_fn, nn.CrossEntropyLoss)
    for loss in ("default", "mse"):  # regression: the squared error either way
        assert type(MLP(num_classes=1, input_shape=(3,), task="regression", loss=loss).loss_fn) is nn.MSELoss
    # the any-model wrapper takes the option; the class count may come from the outputs
    wrapped = Supervised(nn.Linear(4, 3), input_shape=(4,), loss="mse")
    assert torch.allclose(wrapped.loss_fn(outputs[:, :3], targets % 3),
                          F.mse_loss(outputs[:, :3], F.one_hot(targets % 3, 3).float()))


def test_train_size_is_a_fixed_balanced_subset_whatever_the_seed(mnist):
    full = MNISTDataModule(data_dir=str(mnist))
    full.setup("fit")
    subsets = []
    for seed in (0, 1):
        torch.manual_seed(seed)  # the run's seed must not change the subset
        data = MNISTDataModule(data_dir=str(mnist), train_size=300)
        data.setup("fit")
        data.setup("test")  # a second setup keeps the same subset
        subsets.append(data.splits["train"])
        assert torch.equal(data.splits["val"][1], full.splits["val"][1])  # validation as before
    (images, labels), (again, _) = subsets
    assert len(labels) == 300 and torch.equal(images, again)
    share = torch.bincount(labels, minlength=10) / 300
    overall = torch.bincount(full.splits["train"][1], minlength=10) / len(full.splits["train"][1])
    assert (share - overall).abs().max() < 0.01  # every class in proportion
    rows = {bytes(image.flatten().tolist()) for image in full.splits["train"][0]}
    assert all(bytes(image.flatten().tolist()) in rows for image in images)  # training images only


def test_too_large_a_train_size_is_one_paragraph(mnist, tmp_path, capsys):
    line, _ = fails(["fit", "--config", str(CONFIGS / "mnist.yaml"), "--data.init_args.data_dir",
                     str(mnist), "--data.init_args.train_size", "5000"], tmp_path / "runs", capsys)
    assert "--data.init_args.train_size 5000 is more than the" in line
    assert "after the validation split" in line and "Choose at most" in line


def test_full_batch_mse_fit_then_predict_and_export(mnist, tmp_path):
    args = ["--config", str(CONFIGS / "edge_of_stability.yaml"), "--data.init_args.data_dir",
            str(mnist), "--data.init_args.train_size", "200", "--data.init_args.batch_size", "200",
            "--trainer.max_epochs", "3", "--trainer.check_val_every_n_epoch", "1",
            "--trainer.logger", "false", "--optimizer.lr", "0.1"]
    fit_dir = run("fit", *args, root=tmp_path / "runs")
    result = metrics(fit_dir)
    assert result["status"] == "completed"
    assert result["global_step"] == 3  # one step an epoch: the whole subset is one batch
    assert 0.0 <= result["test/acc"] <= 1.0 and result["train/loss"] < 0.2  # MSE, not cross-entropy
    checkpoint = next((fit_dir / "checkpoints").glob("epoch*.ckpt"))
    assert torch.load(checkpoint, weights_only=False)["hyper_parameters"]["loss"] == "mse"
    predict_dir = run("predict", *args, "--ckpt_path", str(checkpoint), root=tmp_path / "runs")
    with open(predict_dir / "predictions.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 100 and abs(sum(float(rows[0][f"p_{i}"]) for i in range(10)) - 1) < 1e-4
    export_dir = run("export", *args, "--ckpt_path", str(checkpoint), root=tmp_path / "runs")
    assert (export_dir / "model.onnx").exists()
    assert json.loads((export_dir / "parity.json").read_text())["count"] > 0
