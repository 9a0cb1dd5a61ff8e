"""Time to accuracy of a config: runs the whole ``python main.py fit --config ...`` (fit, then
the test of the best checkpoint), timing it from launch, and prints the per-epoch curve.

    python benchmarks/time_to_accuracy.py --json tta.json                     # configs/cifar.yaml
    python benchmarks/time_to_accuracy.py -- --trainer.max_epochs 1 --trainer.limit_train_batches 5

Arguments after ``--`` go to ``main.py`` unchanged. The run gets one extra callback,
:class:`ElapsedTime`, which logs ``time/elapsed_s`` (seconds since launch) beside each
epoch's validation metrics; the curve is read back from the run's ``csv/metrics.csv`` and
the final numbers from its ``metrics.json``.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "cifar.yaml"
LAUNCH_ENV = "NETSCOPE_LAUNCH_TIME"


class ElapsedTime(Callback):
    """Log ``time/elapsed_s``, seconds since the command was launched (``$NETSCOPE_LAUNCH_TIME``,
    else since this callback was made), at the end of every validation epoch."""

    def __init__(self) -> None:
        self.launched = float(os.environ.get(LAUNCH_ENV, time.time()))

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            pl_module.log("time/elapsed_s", time.time() - self.launched)


def epoch_curve(metrics_csv: Path) -> list[dict[str, float]]:
    """One entry per validated epoch: epoch, elapsed_s, val/acc, val/loss, train/loss, train/acc
    (none when the run kept no CSV history, as with ``--trainer.logger false``)."""
    if not metrics_csv.exists():
        return []
    epochs: dict[int, dict[str, float]] = {}
    with metrics_csv.open() as file:
        for row in csv.DictReader(file):
            if not row.get("epoch"):
                continue
            entry = epochs.setdefault(int(float(row["epoch"])), {"epoch": int(float(row["epoch"])) + 1})
            for column, name in (("time/elapsed_s", "elapsed_s"), ("val/acc", "val_acc"),
                                 ("val/loss", "val_loss"), ("train/loss_epoch", "train_loss"),
                                 ("train/acc", "train_acc")):
                if row.get(column):
                    entry[name] = float(row[column])
    return [entry for _, entry in sorted(epochs.items()) if "val_acc" in entry]


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--root", type=Path, default=ROOT / "runs", help="trainer.default_root_dir")
    parser.add_argument("--targets", type=float, nargs="*", default=[0.85, 0.90, 0.91, 0.94],
                        help="validation accuracies to report the time to")
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
    summary = json.loads((run_dir / "metrics.json").read_text())
    curve = epoch_curve(run_dir / "csv" / "metrics.csv")
    time_to = {str(t): next((e["elapsed_s"] for e in curve if e["val_acc"] >= t), None)
               for t in args.targets}
    result = {"wall_s": wall, "test_acc": summary.get("test/acc"), "val_acc": summary.get("val/acc"),
              "status": summary.get("status"), "epochs": curve, "time_to_val_acc_s": time_to,
              "run_dir": str(run_dir), "command": command[1:]}
    print(f"\n{'epoch':>5} {'elapsed_s':>9} {'val_acc':>8} {'train_loss':>10}")
    for e in curve:
        print(f"{e['epoch']:5d} {e.get('elapsed_s', float('nan')):9.1f} {e['val_acc']:8.4f} "
              f"{e.get('train_loss', float('nan')):10.4f}")
    if not curve:
        print("(no per-epoch curve: the run kept no CSV history; leave the logger on for it)")
    print(f"test/acc {result['test_acc']}  wall {wall:.1f} s  ({run_dir})")
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
