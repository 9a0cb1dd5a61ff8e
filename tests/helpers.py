"""Helpers the tests share: run ``main`` as a user would and read what the run left.

Imported as ``from tests.helpers import ...`` (fixtures live in ``conftest.py``).
"""

import json
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


def run(*args: str, root: Path, exit_code: int = 0) -> Path:
    """Run ``main([...])`` with ``--trainer.default_root_dir root``; return the new run
    directory. With ``exit_code``, the command must end with that status (a failing command
    otherwise raises its ``SystemExit``)."""
    before = set(root.iterdir()) if root.exists() else set()
    try:
        main([*args, "--trainer.default_root_dir", str(root)])
    except SystemExit as stop:
        if not exit_code:
            raise
        assert stop.code == exit_code, f"exit status {stop.code}, expected {exit_code}"
    else:
        assert exit_code == 0, f"exit status 0, expected {exit_code}"
    created = sorted(set(root.iterdir()) - before)
    assert len(created) == 1, f"expected one new run directory, got {created}"
    return created[0]


def metrics(run_dir: Path) -> dict:
    """The run's ``metrics.json``."""
    return json.loads((run_dir / "metrics.json").read_text())


CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"]


def make_mnist(root: Path, train: int = 4500, test: int = 200, name: str = "MNIST") -> Path:
    """A generated MNIST look-alike in the real idx format (``<root>/<name>/raw/*-ubyte``),
    so that ``MNISTDataModule`` (or, with ``name="FashionMNIST"``, its Fashion twin) reads
    it exactly as it reads the real files. Each class is a fixed random 28x28 template plus
    noise: learnable in a few steps, like digits, and big enough for 60 steps of 64.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    templates = rng.integers(0, 256, (10, 28, 28))
    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", train), ("t10k", test)):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        noise = rng.normal(0, 60, (count, 28, 28))
        images = np.clip(templates[labels] * 0.7 + noise, 0, 255).astype(np.uint8)
        # idx format: magic (0x0803 images, 0x0801 labels), then big-endian sizes, then bytes
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            np.array([2051, count, 28, 28], ">i4").tobytes() + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            np.array([2049, count], ">i4").tobytes() + labels.tobytes())
    return root
