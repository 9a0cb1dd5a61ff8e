"""Figures come from a run's files: ``python -m figures RUN_DIR`` redraws them later."""

import subprocess
import sys
from pathlib import Path

from netscope.core.files import read_json
from tests.helpers import CONFIGS, run


def test_a_finished_runs_figures_are_redrawn_from_its_files(tmp_path: Path) -> None:
    run_dir = run("fit", "--config", str(CONFIGS / "xor.yaml"), "--trainer.max_epochs", "2",
                  root=tmp_path / "runs")
    figures = ["activations.png", "grad_norms.png", "test_confusion_matrix.png",
               "histograms_weights.png", "histograms_grads.png", "histograms_activations.png"]
    assert read_json(run_dir / "layers.json") == {
        "activations": {"features.1": "Sigmoid"},
        "weights": {"features.0": "Linear", "head": "Linear"}}
    for name in figures:
        (run_dir / name).unlink()
    done = subprocess.run([sys.executable, "-m", "figures", str(run_dir)], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    for name in figures:
        assert (run_dir / name).stat().st_size > 5_000
        assert str(run_dir / name) in done.stdout


def test_a_folder_that_is_no_run_is_refused_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "figures", str(tmp_path)], capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 1 and "not a netscope run directory" in done.stderr
    assert "Traceback" not in done.stderr
