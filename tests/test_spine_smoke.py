"""Smoke test of the spine: XOR trains to 100% through the real CLI."""

from tests.helpers import CONFIGS, metrics, run


def test_xor_config_reaches_full_accuracy(tmp_path):
    run_dir = run("fit", "--config", str(CONFIGS / "xor.yaml"), root=tmp_path / "runs")
    result = metrics(run_dir)
    assert result["status"] == "completed"
    assert result["test/acc"] == 1.0
    assert (run_dir / "config.yaml").exists()
    assert list((run_dir / "checkpoints").glob("*.ckpt"))
