"""Schedules span the fit they run in: overriding its length keeps the schedule's shape.

The shipped configs leave schedule lengths out; netscope takes them from the fit
(``models.optimization``). The learning rate the run logs (``lr``, on by default) shows
where each schedule starts, peaks and ends.
"""

from pathlib import Path

import pytest

from netscope.core.rundir import RunDir
from tests.helpers import CONFIGS, run
from tests.image_folders import make_class_folder

QUIET = ["--trainer.logger", "false", "--trainer.enable_model_summary", "false",
         "--trainer.log_every_n_steps", "1", "--trainer.limit_val_batches", "1",
         "--test_after_fit", "false"]


def logged_lr(run_dir: Path) -> list[float]:
    return RunDir(run_dir).history().series("lr")[1]


#: airbench94's SGD schedule, as overrides.
ONE_CYCLE = ["--optimizer", "torch.optim.SGD", "--optimizer.init_args.momentum", "0.85",
             "--lr_scheduler", "torch.optim.lr_scheduler.OneCycleLR",
             "--lr_scheduler.init_args.max_lr", "0.75", "--lr_scheduler.init_args.pct_start", "0.23",
             "--lr_scheduler.init_args.anneal_strategy", "linear",
             "--lr_scheduler.init_args.div_factor", "5.0",
             "--lr_scheduler.init_args.final_div_factor", "2.857",
             "--lr_scheduler.init_args.cycle_momentum", "false"]

LENGTHS = pytest.mark.parametrize("overrides", [
    ["--trainer.max_epochs", "2", "--data.init_args.batch_size", "2"],  # 28 steps
    ["--trainer.max_epochs", "6", "--data.init_args.batch_size", "1024"],  # 6 steps
], ids=["max_epochs=2", "batch_size=1024"])


def _cifar(data: Path, root: Path, *overrides: str) -> Path:
    return run("fit", "--config", str(CONFIGS / "cifar.yaml"), "--data.init_args.data_dir",
               str(data), *QUIET, "--trainer.limit_val_batches", "0",
               "--model.init_args.widths", "[8, 16, 16]", *overrides, root=root)


@LENGTHS
def test_one_cycle_starts_peaks_and_ends_where_the_full_schedule_does(
        tiny_cifar: Path, tmp_path: Path, overrides: list[str]) -> None:
    lr = logged_lr(_cifar(tiny_cifar, tmp_path / "runs", *ONE_CYCLE, *overrides))
    max_lr, div, final_div = 0.75, 5.0, 2.857
    assert lr[0] == pytest.approx(max_lr / div)  # the first step, whatever the length
    assert lr[-1] == pytest.approx(max_lr / div / final_div)  # the last step: the end
    assert max(lr) == pytest.approx(max_lr, rel=0.35)  # the peak is inside the fit
    assert len(lr) >= 3


#: A LinearLR to 0 over the fit, on both parts of MuonSGD (as the Muon CIFAR recipe).
MUON_LINEAR = ["--optimizer", "netscope.optim.MuonSGD", "--optimizer.init_args.lr", "1.656",
               "--optimizer.init_args.momentum", "0.85", "--optimizer.init_args.nesterov", "true",
               "--optimizer.init_args.muon_lr", "0.24",
               "--lr_scheduler", "torch.optim.lr_scheduler.LinearLR",
               "--lr_scheduler.init_args.start_factor", "1.0",
               "--lr_scheduler.init_args.end_factor", "0.0",
               "--lr_scheduler.init_args.total_iters", "null"]


@LENGTHS
def test_a_linear_decay_takes_both_parts_of_muon_sgd_to_zero_with_the_fit(
        tiny_cifar: Path, tmp_path: Path, overrides: list[str]) -> None:
    history = RunDir(_cifar(tiny_cifar, tmp_path / "runs", *MUON_LINEAR, *overrides)).history()
    for group, start in (("lr/pg1", 1.656), ("lr/pg2", 0.24)):  # SGD's part, Muon's
        _, lr = history.series(group)
        assert len(lr) >= 3 and lr[0] == pytest.approx(start)
        # LinearLR to 0 over the fit's n steps: step i runs at (1 - i/n), the last at 1/n
        assert lr[-1] == pytest.approx(start / len(lr))


@pytest.mark.parametrize("epochs", [2, 4])
def test_satellite_linear_decay_reaches_its_end_with_the_fit(tmp_path: Path, epochs: int) -> None:
    folder = make_class_folder(tmp_path / "images", per_class=4, corrupt=False)
    run_dir = run("fit", "--config", str(CONFIGS / "satellite.yaml"), "--data.init_args.data_dir",
                  str(folder), "--data.init_args.image_size", "16", "--data.init_args.batch_size",
                  "8", "--trainer.max_epochs", str(epochs), *QUIET, root=tmp_path / "runs")
    history = RunDir(run_dir).history()
    steps, lr = history.series("lr")
    epoch_starts = sorted({round(v, 12) for v in lr}, reverse=True)
    assert len(epoch_starts) == epochs and epoch_starts[0] == pytest.approx(0.003)
    # LinearLR from 1.0 to 0.05 over the fit: one equal step down per epoch, ending at 5%
    # after the last one, so the last epoch runs at 0.003 * (1 - 0.95 * (epochs-1)/epochs).
    assert epoch_starts[-1] == pytest.approx(0.003 * (1 - 0.95 * (epochs - 1) / epochs))


def test_a_schedule_longer_than_the_fit_is_refused(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    folder = make_class_folder(tmp_path / "images", per_class=4, corrupt=False)
    with pytest.raises(SystemExit):
        run("fit", "--config", str(CONFIGS / "satellite.yaml"), "--data.init_args.data_dir",
            str(folder), "--data.init_args.image_size", "16", "--trainer.max_epochs", "2",
            "--lr_scheduler.init_args.total_iters", "12", *QUIET, root=tmp_path / "runs")
    message = capsys.readouterr().err
    assert "12 epochs long" in message and "only 2" in message and "Traceback" not in message


def test_an_epoch_schedule_spans_a_fit_bounded_by_max_steps(tmp_path: Path) -> None:
    # max_epochs -1 with max_steps: the epochs are counted from the training loader (they
    # were NaN: Lightning had not set the loader up yet when the optimizer was built).
    folder = make_class_folder(tmp_path / "images", per_class=4, corrupt=False)
    run_dir = run("fit", "--config", str(CONFIGS / "satellite.yaml"), "--data.init_args.data_dir",
                  str(folder), "--data.init_args.image_size", "16", "--data.init_args.batch_size",
                  "4", "--trainer.max_epochs", "-1", "--trainer.max_steps", "6", *QUIET,
                  "--trainer.limit_val_batches", "0", root=tmp_path / "runs")
    steps, lr = RunDir(run_dir).history().series("lr")
    assert len(steps) == 6 and lr[0] == pytest.approx(0.003)
    assert 0.003 * 0.05 <= min(lr) < 0.003  # decays, within the schedule's end
