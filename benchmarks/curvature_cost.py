"""What one ``Curvature`` measurement costs, against one training step of the same fit.

    python benchmarks/curvature_cost.py --config configs/mnist.yaml --data_dir ../shared/data/mnist
    python benchmarks/curvature_cost.py --config configs/cifar.yaml --precision 32-true --steps 30 --every 5

Trains ``--steps`` steps of the config with ``Curvature(every_n_steps=--every)`` and the
default diagnostics, times every training batch, and reports the median ordinary step (no
curvature measurement on it), the median measurement (its own wall time: Lanczos's
Hessian-vector products on the fixed batch and the noise scale's two half-batch
backwards), their ratio — the cost of a tracked step as a multiple of a step, the figure
Cockpit reports (7.1x for its top eigenvalue on a GPU) — and the Hessian-vector products
each measurement took (warm-started Lanczos needs few after the first).
"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from lightning.pytorch import Callback

from benchmarks.common import (
    benchmark_parser,
    build,
    emit,
    fit_overrides,
    machine,
    parse_benchmark_args,
)
from netscope.callbacks import Curvature


class BatchTimes(Callback):
    """The wall time of every training batch (everything done for it, callbacks included)."""

    def __init__(self) -> None:
        self.started = 0.0
        self.times: list[tuple[int, float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.times.append((trainer.global_step - 1, time.perf_counter() - self.started))


def main() -> None:
    parser = benchmark_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--every", type=int, default=20, help="Curvature's every_n_steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed first steps")
    parser.add_argument("--precision", default=None, help="override trainer.precision")
    parser.add_argument("--args", default="", help="more config overrides, as one string")
    args = parse_benchmark_args(parser)
    extra = ["--trainer.precision", args.precision] if args.precision else []
    extra += args.args.split()
    with __import__("tempfile").TemporaryDirectory() as root:
        cli = build(args.config, args.data_dir, *fit_overrides(args.steps, root), *extra,
                    accelerator=args.accelerator)
        curvature, times = Curvature(every_n_steps=args.every), BatchTimes()
        # BatchTimes first: its clock starts before Curvature measures in the same hook
        cli.trainer.callbacks[:0] = [times]
        cli.trainer.callbacks.append(curvature)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    tracked = {s for s in range(args.steps) if (s + 1) % args.every == 0}
    ordinary = [t for s, t in times.times[args.warmup:] if s not in tracked]
    step = statistics.median(ordinary)
    measurement = statistics.median(curvature.seconds)
    params = sum(p.numel() for p in cli.model.parameters() if p.requires_grad)
    emit({"step_ms": 1000 * step, "measurement_ms": 1000 * measurement,
          "measurement_vs_step": measurement / step,
          "tracked_step_vs_step": (step + measurement) / step,
          "overhead_at_cadence": measurement / (step * args.every),
          "hvp_products": curvature.products, "measurements": len(curvature.seconds),
          "parameters": params, "batch_size": cli.datamodule.batch_size,
          "settings": {"config": str(args.config), "steps": args.steps, "every": args.every,
                       "precision": args.precision or "the config's", "machine": machine()}},
         args.json)


if __name__ == "__main__":
    main()
