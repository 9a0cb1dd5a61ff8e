"""The headline targets, end to end through the real CLI (slow: run with ``pytest -m slow``)."""

import pytest

from tests.helpers import CONFIGS, SHARED_DATA, metrics, requires_shared, run

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", range(3, 13))
def test_xor_solves_more_seeds(tmp_path, seed):
    run_dir = run("fit", "--config", str(CONFIGS / "xor.yaml"), "--seed_everything", str(seed),
                  root=tmp_path / "runs")
    assert metrics(run_dir)["test/acc"] == 1.0


@requires_shared("mnist")
def test_mnist_config_reaches_95_percent(tmp_path):
    run_dir = run("fit", "--config", str(CONFIGS / "mnist.yaml"), "--data.init_args.data_dir",
                  str(SHARED_DATA / "mnist"), "--trainer.logger", "false", root=tmp_path / "runs")
    assert metrics(run_dir)["test/acc"] >= 0.95


@requires_shared("satellite")
def test_satellite_config_reaches_98_percent(tmp_path):
    run_dir = run("fit", "--config", str(CONFIGS / "satellite.yaml"), "--data.init_args.data_dir",
                  str(SHARED_DATA / "satellite"), "--trainer.logger", "false", root=tmp_path / "runs")
    assert metrics(run_dir)["test/acc"] >= 0.98
    assert (run_dir / "test_per_class.csv").exists() and (run_dir / "test_confusion_matrix.png").exists()
