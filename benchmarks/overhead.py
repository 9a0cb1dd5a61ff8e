"""What netscope costs: training images/s of a plain PyTorch loop vs netscope vs netscope
with its default diagnostics, on the same model, data and number of steps.

    python benchmarks/overhead.py --json overhead.json            # configs/cifar.yaml
    python benchmarks/overhead.py --steps 12 --repeats 1 --log_every_n_steps 4   # a quick look
    python benchmarks/overhead.py --accelerator gpu --json overhead.json   # on a GPU, where
                                                   # every host-device sync shows

On a machine shared with other jobs use ``--threads 1``: a multi-threaded step waits for
its slowest thread, so one busy core slows it several-fold, and unevenly.

The three variants run interleaved (raw, netscope, netscope + diagnostics, raw, ...) and
repeated in one process, so drifts of a shared machine hit all of them alike; medians are
reported. "Diagnostics" are the callbacks a command runs with the config: those of
``netscope/defaults.yaml`` (the doctor included) and any the config adds; without
them the trainer keeps netscope's own (run summary, console lines, checkpointing) and its
loggers (W&B offline and CSV, as a user gets them). Each timed window starts after
``--warmup`` steps and covers everything done per step (data, augmentation, step,
callbacks, logging), but not start-up, validation or the end of the fit.

Prints one JSON object: ``raw_img_s``, ``netscope_img_s``, ``netscope_diag_img_s`` (medians),
the ratios to raw, every sample, and the settings; ``--json PATH`` also writes it there.
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from lightning.pytorch import seed_everything  # noqa: E402

from benchmarks.common import (  # noqa: E402
    PlainLoop,
    benchmark_parser,
    build,
    device_name,
    emit,
    fit_overrides,
    lightning_images_per_second,
    machine,
    parse_benchmark_args,
)

VARIANTS = ("raw", "netscope", "netscope_diag")


def measure(variant: str, args: argparse.Namespace, root: str) -> float:
    """Images/s of one variant, built fresh from the config."""
    seed_everything(0, verbose=False)
    every = args.log_every_n_steps
    extra = ["--trainer.log_every_n_steps", str(every)] if every else []
    if args.precision:
        extra += ["--trainer.precision", args.precision]
    if variant == "raw":
        cli = build(args.config, args.data_dir, "--trainer.logger", "false", *extra,
                    accelerator=args.accelerator)
        return PlainLoop(cli).train(args.steps, args.warmup)
    overrides = [*fit_overrides(args.steps, root), *extra]
    if variant == "netscope":
        overrides.append("--trainer.callbacks=[]")
    cli = build(args.config, args.data_dir, *overrides, accelerator=args.accelerator)
    return lightning_images_per_second(cli, args.steps, args.warmup)


def main() -> None:
    parser = benchmark_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="training steps per measurement")
    parser.add_argument("--warmup", type=int, default=10, help="untimed first steps")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the three variants")
    parser.add_argument("--log_every_n_steps", type=int, default=None,
                        help="override the config's logging (and diagnostics) interval")
    parser.add_argument("--precision", default=None,
                        help="override the config's trainer.precision (e.g. 32-true on a CPU "
                             "without AVX512-BF16, where bf16 autocast is emulated)")
    args = parse_benchmark_args(parser)
    if args.steps <= args.warmup:
        parser.error("--steps must be larger than --warmup")

    samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="netscope-overhead-") as root:
        for round_ in range(args.repeats):
            for variant in VARIANTS:
                samples[variant].append(measure(variant, args, root))
                print(f"round {round_ + 1}/{args.repeats} {variant:>13}: "
                      f"{samples[variant][-1]:8.1f} img/s", flush=True)
    medians = {f"{v}_img_s": statistics.median(samples[v]) for v in VARIANTS}
    result = {
        **medians,
        "netscope_vs_raw": medians["netscope_img_s"] / medians["raw_img_s"],
        "netscope_diag_vs_raw": medians["netscope_diag_img_s"] / medians["raw_img_s"],
        "samples_img_s": samples,
        "settings": {"config": str(args.config), "steps": args.steps, "warmup": args.warmup,
                     "repeats": args.repeats, "log_every_n_steps": args.log_every_n_steps,
                     "precision": args.precision or "the config's",
                     "device": device_name(args.accelerator), "machine": machine()},
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
