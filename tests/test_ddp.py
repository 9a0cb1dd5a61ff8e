"""Two CPU processes under DDP, diagnostics on: the fit ends (no deadlock), and its test
metrics cover the whole split, equal to one process testing the same checkpoint."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from netscope.datamodules.loader import TensorLoader
from netscope.main import main
from tests.helpers import CONFIGS, metrics
from tests.image_folders import make_class_folder


def test_evaluation_shards_cover_every_sample_once():
    samples = torch.arange(7)
    seen = [int(x) for rank in range(2)
            for (batch,) in TensorLoader((samples,), batch_size=2, rank=rank, world_size=2,
                                         even_shards=False)
            for x in batch]
    assert sorted(seen) == list(range(7))


@pytest.mark.slow  # two processes starting torch: a minute on 2 cores
def test_two_process_ddp_fit_matches_one_process_test(tmp_path):
    # 7 images a class: 3 test images, so the two ranks' test shards are uneven (2 and 1).
    shapes = make_class_folder(tmp_path / "shapes", per_class=7, corrupt=False)
    repository = Path(__file__).resolve().parents[1]
    args = ["--config", str(CONFIGS / "mnist.yaml"), "--data", "netscope.datamodules.ImageFolderDataModule",
            "--data.init_args.data_dir", str(shapes), "--data.init_args.image_size", "8",
            "--data.init_args.batch_size", "4", "--trainer.max_epochs", "2",
            "--trainer.log_every_n_steps", "1", "--trainer.logger", "false",
            "--trainer.enable_model_summary", "false",
            "--trainer.default_root_dir", str(tmp_path / "runs")]
    done = subprocess.run(
        [sys.executable, str(repository / "main.py"), "fit", *args, "--trainer.strategy", "ddp",
         "--trainer.devices", "2", "--trainer.accelerator", "cpu"],
        env={**os.environ, "PYTHONPATH": str(repository)}, cwd=tmp_path, timeout=600,
        capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()  # both ranks in one run directory
    ddp = metrics(run_dir)
    assert ddp["status"] == "completed"
    best = next((run_dir / "checkpoints").glob("epoch*.ckpt"))
    main(["test", "--config", str(run_dir / "config.yaml"), "--ckpt_path", str(best),
          "--trainer.strategy", "auto", "--trainer.devices", "1", "--trainer.logger", "false",
          "--trainer.default_root_dir", str(tmp_path / "single")])
    (single_dir,) = (tmp_path / "single").iterdir()
    single = metrics(single_dir)
    for name in ("test/loss", "test/acc"):
        assert math.isclose(ddp[name], single[name], abs_tol=1e-6), (name, ddp[name], single[name])
