"""Datamodules: deterministic stratified splits, offline copies, read-only folders, caching,
a test order that covers every class."""

import csv
import os
import stat

import pytest
import torch

from netscope.datamodules import CIFAR10DataModule, MNISTDataModule, XORDataModule
from netscope.datamodules.loader import TensorLoader
from netscope.deploy.commands import parity_inputs
from netscope.deploy.spec import InputSpec
from tests.helpers import CIFAR_CLASSES, CONFIGS, SHARED_DATA, metrics, requires_shared, run


@requires_shared("mnist")
def test_validation_split_is_seeded_and_stratified():
    first = MNISTDataModule(data_dir=str(SHARED_DATA / "mnist"))
    torch.manual_seed(123)  # the global seed must not change the split
    second = MNISTDataModule(data_dir=str(SHARED_DATA / "mnist"))
    first.setup("fit"), second.setup("fit")
    assert torch.equal(first.splits["val"][1], second.splits["val"][1])
    assert abs(len(first.splits["val"][1]) - 6000) <= 10  # 10% of each class, rounded
    assert len(first.splits["val"][1]) + len(first.splits["train"][1]) == 60000
    counts = torch.bincount(first.splits["val"][1], minlength=10).float()
    totals = counts + torch.bincount(first.splits["train"][1], minlength=10).float()
    assert torch.allclose(counts / totals, torch.full((10,), 0.1), atol=0.001)
    assert len(first.splits["test"][1]) == 10000


def test_xor_has_the_four_points():
    data = XORDataModule(repeats=3)
    data.setup("fit")
    inputs, targets = data.splits["test"]
    assert targets.tolist() == [int(a) ^ int(b) for a, b in inputs.tolist()]
    assert len(data.splits["train"][1]) == 12


def test_loader_reshuffles_each_pass_and_repeats_with_the_seed():
    data = (torch.arange(10), torch.arange(10))
    loader = TensorLoader(data, batch_size=4, shuffle=True, seed=1)
    first, second = [torch.cat([b[0] for b in loader]) for _ in range(2)]
    assert sorted(first.tolist()) == list(range(10)) and not torch.equal(first, second)
    again = torch.cat([b[0] for b in TensorLoader(data, batch_size=4, shuffle=True, seed=1)])
    assert torch.equal(first, again)


def test_cifar_class_folders_read_only_and_cached_elsewhere(tiny_cifar, tmp_path):
    for path in [tiny_cifar, *tiny_cifar.rglob("*")]:
        os.chmod(path, stat.S_IREAD | stat.S_IEXEC if path.is_dir() else stat.S_IREAD)
    before = sorted(p.relative_to(tiny_cifar) for p in tiny_cifar.rglob("*"))
    data = CIFAR10DataModule(data_dir=str(tiny_cifar), cache_dir=str(tmp_path / "cache"))
    data.setup("fit")
    images, labels = data.splits["test"]
    assert images.shape == (30, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.bincount().tolist() == [3] * 10
    assert sorted(p.relative_to(tiny_cifar) for p in tiny_cifar.rglob("*")) == before
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # the decoded cache


def test_test_split_is_iterated_in_a_fixed_order_with_the_classes_interleaved(tiny_cifar):
    torch.manual_seed(5)  # the global seed must not change the order
    data = CIFAR10DataModule(data_dir=str(tiny_cifar), eval_batch_size=5)
    data.setup("test")
    images, labels = data.splits["test"]
    assert labels.tolist() == sorted(labels.tolist())  # stored class by class
    batches = [batch[1] for batch in data.test_dataloader()]
    order = torch.cat(batches)
    assert sorted(order.tolist()) == sorted(labels.tolist())  # every sample once
    # the first two batches, as --trainer.limit_test_batches 2 sees them: every class once
    assert sorted(torch.cat(batches[:2]).tolist()) == list(range(10))
    torch.manual_seed(6)
    again = CIFAR10DataModule(data_dir=str(tiny_cifar), eval_batch_size=5)
    again.setup("test")
    assert torch.equal(torch.cat([b[1] for b in again.test_dataloader()]), order)
    # predict and the export's parity check keep the stored order
    assert torch.equal(torch.cat([b[1] for b in data.predict_dataloader()]), labels)
    spec = InputSpec("image", (3, 32, 32), data.mean, data.std, tuple(CIFAR_CLASSES), "classification")
    assert torch.equal(parity_inputs(data, spec, count=7), images[:7])


def test_a_test_cut_short_tests_every_class(tmp_path, tiny_cifar):
    """``--trainer.limit_test_batches 2`` on CIFAR-10: 10 images, one of each class (in the
    stored order they would be the airplanes, the automobiles, the birds and one cat)."""
    run_dir = run("fit", "--config", str(CONFIGS / "cifar.yaml"),
                  "--data.init_args.data_dir", str(tiny_cifar), "--data.init_args.batch_size", "4",
                  "--data.init_args.eval_batch_size", "5", "--model.init_args.widths", "[16, 32, 32]",
                  "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                  "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "2",
                  "--trainer.logger", "false", "--trainer.enable_model_summary", "false",
                  root=tmp_path / "runs")
    with (run_dir / "test_per_class.csv").open() as stream:
        rows = [row for row in csv.DictReader(stream) if row["class"] in CIFAR_CLASSES]
    assert [row["class"] for row in rows] == CIFAR_CLASSES
    assert [int(float(row["support"])) for row in rows] == [1] * 10
    # test/acc is the accuracy over those ten images, one per class
    correct = sum(float(row["recall"]) * int(float(row["support"])) for row in rows)
    assert metrics(run_dir)["test/acc"] == pytest.approx(correct / 10)
