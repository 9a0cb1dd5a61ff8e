"""Time and images to accuracy of a config: runs the whole ``python main.py fit --config ...``
(fit, then the test of the final or best checkpoint), timing it from launch, and prints the
per-epoch curve with the training images seen.

    python benchmarks/time_to_accuracy.py --json tta.json                     # configs/cifar.yaml
    python benchmarks/time_to_accuracy.py -- --trainer.max_epochs 1 --trainer.limit_train_batches 5

Arguments after ``--`` go to ``main.py`` unchanged. The run gets one extra callback,
:class:`ElapsedTime`, which logs at the end of every training epoch (after its validation)
``time/elapsed_s`` (seconds since launch), ``time/train_s`` (seconds since training
started: no start-up, data decoding or final test) and ``time/images_seen`` (training
images counted batch by batch, not estimated). The curve is read back from the run's files
through :meth:`core.rundir.RunDir.history`, the final numbers from its ``metrics.json``.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from lightning.pytorch import Callback, LightningModule, Trainer  # noqa: E402

from netscope.core.history import History  # noqa: E402
from netscope.core.rundir import RunDir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "cifar.yaml"
LAUNCH_ENV = "NETSCOPE_LAUNCH_TIME"

#: curve entry -> logged name (``train/loss_epoch``: the epoch mean of a per-step metric)
CURVE = {"epoch": "time/epoch", "images_seen": "time/images_seen", "elapsed_s": "time/elapsed_s",
         "train_s": "time/train_s", "val_acc": "val/acc", "val_loss": "val/loss",
         "train_loss": "train/loss_epoch"}


class ElapsedTime(Callback):
    """Log the epoch, the seconds since launch (``$NETSCOPE_LAUNCH_TIME``, else since this
    callback was made) and since training started, and the training images seen, at the end
    of every training epoch. Reads no clock and no tensor inside the epoch: only the batch's
    length, so a GPU step is not made to wait."""

    def __init__(self) -> None:
        self.launched = float(os.environ.get(LAUNCH_ENV, time.time()))
        self.train_started = self.launched
        self.images_seen = 0

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.train_started = time.time()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        self.images_seen += len(batch[1]) * trainer.world_size

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        now = time.time()
        pl_module.log_dict({"time/epoch": float(trainer.current_epoch + 1),
                            "time/elapsed_s": now - self.launched,
                            "time/train_s": now - self.train_started,
                            "time/images_seen": float(self.images_seen)})


def epoch_curve(history: History) -> list[dict[str, float]]:
    """One entry per training epoch (see :data:`CURVE`), from a run's history; the
    validation values where that epoch validated (none when the run kept no CSV history, as
    with ``--trainer.logger false``)."""
    by_name = {entry: dict(zip(*history.series(name))) for entry, name in CURVE.items()}
    curve = []
    for step in by_name["epoch"]:
        entry = {"step": step, **{k: values[step] for k, values in by_name.items() if step in values}}
        entry["epoch"] = int(entry["epoch"])
        entry["images_seen"] = int(entry["images_seen"])
        curve.append(entry)
    return curve


def first_reaching(curve: list[dict[str, float]], target: float, key: str) -> float | None:
    """``key`` of the first epoch whose validation accuracy reaches ``target``."""
    return next((e[key] for e in curve if e.get("val_acc", -1.0) >= target), None)


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--root", type=Path, default=ROOT / "runs", help="trainer.default_root_dir")
    parser.add_argument("--targets", type=float, nargs="*", default=[0.85, 0.90, 0.91, 0.94],
                        help="validation accuracies to report the time and images to")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)

    args.root.mkdir(parents=True, exist_ok=True)
    before = set(args.root.iterdir())
    command = [sys.executable, str(ROOT / "main.py"), "fit", "--config", str(args.config),
               "--trainer.default_root_dir", str(args.root), *extra,
               # appended last, so that ``--trainer.callbacks.<arg>`` among the arguments
               # still sets the config's last callback
               "--trainer.callbacks+=benchmarks.time_to_accuracy.ElapsedTime"]
    launched = time.time()
    returncode = subprocess.call(command, cwd=ROOT, env={**os.environ, LAUNCH_ENV: str(launched)})
    wall = time.time() - launched
    created = sorted(set(args.root.iterdir()) - before)
    if returncode or len(created) != 1:
        sys.exit(f"the run failed (exit status {returncode}); see its output above")
    run_dir = created[0]
    summary = RunDir(run_dir).summary() or {}
    curve = epoch_curve(RunDir(run_dir).history())
    last = curve[-1] if curve else {}
    train_s = last.get("train_s")
    result = {
        "test_acc": summary.get("test/acc"), "val_acc": summary.get("val/acc"),
        "status": summary.get("status"), "wall_s": wall, "train_s": train_s,
        "images_seen": last.get("images_seen"),
        "images_per_s": last["images_seen"] / train_s if train_s else None,
        "time_to_val_acc_s": {str(t): first_reaching(curve, t, "elapsed_s") for t in args.targets},
        "images_to_val_acc": {str(t): first_reaching(curve, t, "images_seen") for t in args.targets},
        "epochs": curve, "run_dir": str(run_dir), "command": command[1:],
    }
    print(f"\n{'epoch':>5} {'images':>9} {'elapsed_s':>9} {'train_s':>8} {'val_acc':>8} {'train_loss':>10}")
    nan = float("nan")
    for e in curve:
        print(f"{e['epoch']:5d} {e['images_seen']:9d} {e.get('elapsed_s', nan):9.1f} "
              f"{e.get('train_s', nan):8.1f} {e.get('val_acc', nan):8.4f} {e.get('train_loss', nan):10.4f}")
    if not curve:
        print("(no per-epoch curve: the run kept no CSV history; leave the logger on for it)")
    print(f"test/acc {result['test_acc']}  images seen {result['images_seen']}  "
          f"training {train_s or nan:.1f} s  wall {wall:.1f} s  ({run_dir})")
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
