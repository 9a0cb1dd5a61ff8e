"""Shared fixtures: every run is small, on CPU, isolated in a temporary folder, offline."""

import os
from pathlib import Path

import pytest

from tests.helpers import CIFAR_CLASSES


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``gpu`` on a machine without CUDA."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (a gpu test)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def one_thread() -> None:
    """Tiny test networks run faster on one thread than fighting over two cores."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline W&B without credentials, caches and home in the test's temporary folder."""
    for key in [k for k in os.environ if k.startswith("WANDB_")]:
        monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def tiny_cifar(tmp_path: Path) -> Path:
    """A CIFAR-10 class-folder copy with 3 random 32x32 PNGs per class and split."""
    import numpy as np
    from PIL import Image

    root = tmp_path / "cifar10"
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in CIFAR_CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(3):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    return root
