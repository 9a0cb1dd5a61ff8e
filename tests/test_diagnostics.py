"""The diagnostics callbacks, read back from what real runs leave behind.

W&B records come from ``wandb leet inspect --json`` (W&B's own reader of a run's log),
TensorBoard records from its ``EventAccumulator``, scalars from ``csv/metrics.csv`` and
``metrics.json``. Every run is the real CLI, a few batches long, on generated MNIST-format
data (so the core is tested on a clean clone) and, where ``../shared/data`` is there, on
real MNIST too.
"""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from netscope.core.rundir import RunDir
from netscope.models import MLP
from tests.helpers import CONFIGS, SHARED_DATA, make_mnist, metrics, requires_shared, run

#: MNIST with the shipped config (its diagnostics included), a few batches long, step
#: metrics every 2 steps so that a short run logs several times; the data comes from the
#: ``mnist`` fixture.
MNIST = ["fit", "--config", str(CONFIGS / "mnist.yaml"),
         "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "6",
         "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
         "--trainer.log_every_n_steps", "2", "--trainer.enable_model_summary", "false"]
#: MNIST config's network: 784-128-64-10 ReLU, layers features.0, .2, head; activations .1, .3.
PARAMS = [name for name, _ in MLP(hidden_sizes=[128, 64]).named_parameters()]
LAYERS = ["features.1", "features.3"]
HISTOGRAM_FIGURES = ["histograms_weights", "histograms_grads", "histograms_activations"]


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a small shared machine two threads contend for the cores and
    make these tiny networks several times slower, with the same results to test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=["generated", pytest.param("real", marks=requires_shared("mnist"))])
def mnist(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """``MNIST`` plus its data: generated MNIST-format files, or the real ones."""
    data = make_mnist(tmp_path / "mnist") if request.param == "generated" else SHARED_DATA / "mnist"
    return [*MNIST, "--data.init_args.data_dir", str(data)]


def wandb_history(run_dir: Path) -> list[dict]:
    """The ``history`` items of the run's W&B log, as W&B reads them."""
    output = subprocess.run(["wandb", "leet", "inspect", "--json", str(run_dir / "wandb")],
                            capture_output=True, text=True, check=True, timeout=60).stdout
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    return [r["history"]["item"] for r in records if r["type"] == "history"]


def wandb_summary(run_dir: Path) -> dict:
    """The run summary W&B keeps (``wandb leet inspect --summary --json``)."""
    output = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--summary",
                             "--json", str(run_dir / "wandb")],
                            capture_output=True, text=True, check=True, timeout=60).stdout
    return json.loads(output)["summary"]


def csv_rows(run_dir: Path) -> list[dict]:
    """``csv/metrics.csv`` as dicts (empty cells left out)."""
    with open(run_dir / "csv" / "metrics.csv") as file:
        return [{k: v for k, v in row.items() if v != ""} for row in csv.DictReader(file)]


def series(rows: list[dict], name: str) -> list[float]:
    """The logged values of one metric, in step order."""
    return [float(row[name]) for row in rows if name in row]


def test_wandb_records_hold_every_family_for_every_layer(tmp_path, mnist):
    run_dir = run(*mnist, root=tmp_path / "runs")
    assert metrics(run_dir)["status"] == "completed"
    items = wandb_history(run_dir)
    scalars = {key for item in items for key, value in item.items()
               if isinstance(value, (int, float))}
    histograms = {key.removesuffix("._type"): item for item in items for key, value in item.items()
                  if key.endswith("._type") and value == "histogram"}

    expected = {"grad_norm/total"}
    expected |= {f"{family}/{p}" for p in PARAMS
                 for family in ("grad_norm", "weight_norm", "update_ratio")}
    expected |= {f"{family}/{layer}" for layer in LAYERS
                 for family in ("act_mean", "act_std", "act_dead")}
    assert expected <= scalars, sorted(expected - scalars)
    assert not any(key.startswith("act_saturated/") for key in scalars)  # ReLU does not saturate

    wanted = {f"{kind}/{p}" for kind in ("weights", "grads") for p in PARAMS}
    wanted |= {f"activations/{layer}" for layer in LAYERS}
    assert wanted <= set(histograms), sorted(wanted - set(histograms))
    for name in wanted:
        item = histograms[name]
        counts, bins = item[f"{name}.values"], item[f"{name}.bins"]
        assert len(bins) == len(counts) + 1 and sum(counts) > 0 and bins == sorted(bins)
    first_layer = histograms["weights/features.0.weight"]["weights/features.0.weight.values"]
    assert len(first_layer) == 64 and sum(first_layer) == 784 * 128  # 64 bins, every weight

    # Scalars logged on Lightning's cadence (steps 1, 3, 5), histograms at the epoch's last batch.
    steps = sorted({item["trainer/global_step"] for item in items if "grad_norm/total" in item})
    assert steps == [1, 3, 5]
    assert histograms["grads/head.weight"]["trainer/global_step"] == 5
    # The end-of-fit figures: in the run directory and on the W&B run as images (the
    # histograms' too, so that wandb leet, which cannot chart histograms, shows them).
    for figure in ("activations", "grad_norms", *HISTOGRAM_FIGURES):
        assert (run_dir / f"{figure}.png").stat().st_size > 10_000
        assert any(item.get(f"figures/{figure}._type") == "image-file" for item in items)
    # The same scalars reach the CSV history the reports read.
    assert expected <= set().union(*csv_rows(run_dir))
    # Histogram bins stay in the history, out of the run summary (wandb would keep each
    # histogram's last bins there, 130 numbers apiece, listed one per line by wandb leet).
    summary = wandb_summary(run_dir)
    assert not [key for key in summary if key.split("/")[0] in ("weights", "grads", "activations")]
    assert "val/acc" in summary and "grad_norm/total" in summary


def test_histograms_go_to_the_run_directory_without_any_logger(tmp_path, mnist):
    """Only the CSV history every run keeps: the histograms are still taken, at the end of
    each epoch, into ``histograms.jsonl``, and drawn per family."""
    run_dir = run(*mnist, "--trainer.logger", "false", "--trainer.max_epochs", "2",
                  root=tmp_path / "runs")
    records = RunDir(run_dir).histograms()
    names = {f"{kind}/{p}" for kind in ("weights", "grads") for p in PARAMS}
    names |= {f"activations/{layer}" for layer in LAYERS}
    assert {record["name"] for record in records} == names
    for name in names:
        taken = [record for record in records if record["name"] == name]
        # the last batch of each 6-batch epoch: steps 5 and 11
        assert [(r["epoch"], r["step"]) for r in taken] == [(0, 5), (1, 11)], name
        for record in taken:
            assert len(record["counts"]) == 64 and len(record["edges"]) == 65
            assert record["edges"] == sorted(record["edges"])
    first = [r for r in records if r["name"] == "weights/features.0.weight"]
    assert all(sum(r["counts"]) == 784 * 128 for r in first)  # every weight, once
    activations = [r for r in records if r["name"] == "activations/features.1"]
    assert all(sum(r["counts"]) == 64 * 128 for r in activations)  # a batch of 64 x 128 units
    for figure in HISTOGRAM_FIGURES:
        assert (run_dir / f"{figure}.png").stat().st_size > 10_000


def test_tensorboard_histograms_and_zero_init_symmetry(tmp_path, mnist):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = run(*mnist, "--trainer.logger", "lightning.pytorch.loggers.TensorBoardLogger",
                  "--model.init_args.init", "zeros", root=tmp_path / "runs")
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"histograms": 0})
    events.Reload()
    tags = set(events.Tags()["histograms"])
    assert {f"{kind}/{p}" for kind in ("weights", "grads") for p in PARAMS} <= tags
    assert {f"activations/{layer}" for layer in LAYERS} <= tags
    assert {"figures/activations", "figures/grad_norms"} <= set(events.Tags()["images"])

    # Zero init: every hidden unit computes the same thing, so every unit of a layer gets
    # the same gradient row (here all zero: ReLU(0) = 0 passes nothing back) and the hidden
    # weights never move; only the output bias learns (the class frequencies).
    rows = csv_rows(run_dir)
    for p in PARAMS:
        if p != "head.bias":
            assert series(rows, f"grad_norm/{p}") == [0.0, 0.0, 0.0], p
    for p in ("features.0.weight", "features.2.weight", "head.weight"):
        assert series(rows, f"weight_norm/{p}") == [0.0, 0.0, 0.0], p
        assert series(rows, f"update_ratio/{p}") == [0.0, 0.0, 0.0], p
    assert min(series(rows, "grad_norm/head.bias")) > 0
    assert series(rows, "act_dead/features.1") == [1.0, 1.0, 1.0]
    for event in events.Histograms("grads/features.0.weight"):  # one value: all gradients equal
        assert event.histogram_value.min == event.histogram_value.max == 0.0
    checkpoint = torch.load(next((run_dir / "checkpoints").glob("*.ckpt")), map_location="cpu")
    hidden = checkpoint["state_dict"]["features.0.weight"]
    assert torch.equal(hidden, hidden[:1].expand_as(hidden))  # all units still identical


def saturation_run(tmp_path: Path, mnist: list[str], activation: str) -> list[dict]:
    """A 4x64 MLP on MNIST for 60 steps at lr 0.3, without any logger; its CSV rows."""
    run_dir = run(*mnist, "--trainer.logger", "false", "--trainer.limit_train_batches", "60",
                  "--trainer.log_every_n_steps", "10", "--test_after_fit", "false",
                  "--model.init_args.hidden_sizes", "[64, 64, 64, 64]",
                  "--model.init_args.activation", activation, "--optimizer.lr", "0.3",
                  root=tmp_path / activation)
    # No logger at all (only the CSV history every run keeps): the diagnostics still work.
    assert metrics(run_dir)["status"] == "completed"
    assert (run_dir / "activations.png").exists() and (run_dir / "grad_norms.png").exists()
    assert not (run_dir / "wandb").exists() and not (run_dir / "tensorboard").exists()
    return csv_rows(run_dir)


def test_sigmoid_top_layer_saturates_more_than_tanh(tmp_path, mnist):
    # Glorot & Bengio (2010, fig. 2): early in training the top hidden layer of a deep
    # sigmoid network is driven to 0 and saturates, while the lower layers do not.
    sigmoid = saturation_run(tmp_path, mnist, "sigmoid")
    tanh = saturation_run(tmp_path, mnist, "tanh")
    top, bottom = "act_saturated/features.7", "act_saturated/features.1"
    assert len(series(sigmoid, top)) == len(series(tanh, top)) == 6
    assert series(sigmoid, top)[-1] > series(tanh, top)[-1] + 0.2
    assert series(sigmoid, "act_mean/features.7")[-1] < 0.05  # pinned at the lower asymptote
    assert series(sigmoid, bottom)[-1] < series(sigmoid, top)[-1]


def test_huge_learning_rate_stops_as_diverged(tmp_path, mnist, capfd):
    # main() returning, not raising SystemExit, is `python main.py` exiting with 0
    run_dir = run(*mnist, "--optimizer.lr", "1000000", "--trainer.limit_train_batches", "30",
                  root=tmp_path / "runs")
    out, err = capfd.readouterr()
    result = metrics(run_dir)
    assert result["status"] == "diverged" and result["global_step"] < 30
    assert result["reason"].startswith("step ") and any(p in result["reason"] for p in PARAMS)
    assert "test/acc" not in result  # a diverged run is not tested
    assert f"Training diverged and was stopped: {result['reason']}" in out
    assert "Traceback" not in out + err


def test_non_finite_gradients_name_the_layer_that_overflowed(tmp_path, mnist):
    guard = ("[{class_path: callbacks.DivergenceGuard, "
             "init_args: {check_every_n_steps: 1, loss_factor: 0}}]")
    run_dir = run(*mnist, "--optimizer.lr", "1000000", "--trainer.limit_train_batches", "30",
                  "--trainer.logger", "false", "--trainer.callbacks", guard, root=tmp_path / "runs")
    result = metrics(run_dir)
    assert result["status"] == "diverged" and result["global_step"] < 30
    # The replayed forward pass finds the first Linear whose output overflowed, and says
    # how large its weights had grown.
    pattern = (r"step \d+: non-finite gradients; the forward pass first produced non-finite "
               r"values in (features\.0|features\.2|head) \(Linear, largest parameter "
               r"\1\.weight \(norm [0-9.e+]+\)\)")
    assert re.fullmatch(pattern, result["reason"]), result["reason"]


def test_bad_interval_is_a_user_error(tmp_path, capfd):
    with pytest.raises(SystemExit) as exit_info:
        run("fit", "--config", str(CONFIGS / "xor.yaml"), "--trainer.max_epochs", "1",
            "--trainer.callbacks+=callbacks.GradientNorms",
            "--trainer.callbacks.every_n_steps", "-5",
            root=tmp_path / "runs")
    assert exit_info.value.code == 1
    error = capfd.readouterr().err
    assert "GradientNorms.every_n_steps must be 0 (off) or a positive number of steps, got -5" \
        in error
    assert "Traceback" not in error
