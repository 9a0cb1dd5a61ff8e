"""Shared fixtures: every run is small, on CPU, isolated in a temporary folder, offline."""

import json
import os
from pathlib import Path

import pytest

from main import main

#: The read-only offline data sets beside the checkout (``../shared/data``).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"

#: Arguments that shrink any fit to a few batches.
FAST = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "4",
        "--trainer.limit_val_batches", "2", "--trainer.limit_test_batches", "2",
        "--trainer.enable_model_summary", "false"]


def requires_shared(name: str) -> pytest.MarkDecorator:
    """Skip a test when ``../shared/data/<name>`` is not there."""
    return pytest.mark.skipif(not (SHARED_DATA / name).exists(), reason=f"no ../shared/data/{name}")


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


def run(*args: str, root: Path) -> Path:
    """Run ``main([...])`` with ``--trainer.default_root_dir root``; return the new run directory."""
    before = set(root.iterdir()) if root.exists() else set()
    main([*args, "--trainer.default_root_dir", str(root)])
    created = sorted(set(root.iterdir()) - before)
    assert len(created) == 1, f"expected one new run directory, got {created}"
    return created[0]


def metrics(run_dir: Path) -> dict:
    """The run's ``metrics.json``."""
    return json.loads((run_dir / "metrics.json").read_text())


CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"]


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
