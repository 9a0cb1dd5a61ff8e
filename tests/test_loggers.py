"""TensorBoard as the drop-in alternative to W&B, and the CSV history every run keeps."""

import csv

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers import CONFIGS, FAST, SHARED_DATA, metrics, requires_shared, run


@requires_shared("mnist")
def test_tensorboard_logger_writes_scalars_into_the_run_dir(tmp_path):
    # Only the class is named: save_dir is carried over from the default logger's settings.
    run_dir = run("fit", "--config", str(CONFIGS / "mnist.yaml"), *FAST,
                  "--data.init_args.data_dir", str(SHARED_DATA / "mnist"),
                  "--trainer.logger", "lightning.pytorch.loggers.TensorBoardLogger",
                  root=tmp_path / "runs")
    assert metrics(run_dir)["status"] == "completed"
    assert not (run_dir / "wandb").exists()

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"histograms": 0})
    events.Reload()
    assert {"val/loss", "val/acc", "test/acc"} <= set(events.Tags()["scalars"])
    assert events.Scalars("test/acc")[-1].value == metrics(run_dir)["test/acc"]
    # The diagnostics callbacks of configs/mnist.yaml write their histograms there too.
    assert "weights/features.0.weight" in events.Tags()["histograms"]
    assert not (tmp_path / "lightning_logs").exists()  # nothing outside the run directory

    # The CSV history the CLI adds beside any logger, and the config both received.
    with open(run_dir / "csv" / "metrics.csv") as file:
        assert "val/loss" in next(csv.reader(file))
    assert "model:" in (run_dir / "csv" / "hparams.yaml").read_text()
