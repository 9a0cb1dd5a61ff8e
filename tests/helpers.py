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
