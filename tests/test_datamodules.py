"""Datamodules: deterministic stratified splits, offline copies, read-only folders, caching."""

import os
import stat

import torch
from netscope.datamodules import CIFAR10DataModule, MNISTDataModule, XORDataModule
from netscope.datamodules.loader import TensorLoader

from tests.helpers import SHARED_DATA, requires_shared


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
