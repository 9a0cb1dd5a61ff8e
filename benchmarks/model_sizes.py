"""What the diagnostics and the doctor cost as the model grows: three models, from the
MNIST MLP (about 110k parameters) through ``configs/cifar.yaml``'s ConvNet to a torchvision
ResNet-18 (11M) on the satellite images, each at its config's default cadence.

    python benchmarks/model_sizes.py --threads 1 --json sizes.json
    python benchmarks/model_sizes.py --sizes mlp_mnist --steps 110 --warmup 5   # one size

For each size, ``overhead.py``'s variants (raw loop and netscope + diagnostics + doctor by
default; ``--variants`` adds others) run interleaved in rounds, in one process, the
garbage collected before each. Reported per size: parameters, the median images/s of each
variant and its ratio to raw, and, from the per-step clock (``benchmarks/timers.py``), the
median milliseconds of a logging step (one on which the diagnostics run and the loggers
write) against an ordinary training step, and their difference: what one logging step
costs. All sizes train in fp32 (``--precision``; bf16 is emulated on a CPU without
AVX512-BF16). The data defaults are the offline copies: ``../shared/data`` beside the
checkout, and ``data/cifar10`` extracted from its tar (``configs/cifar.yaml``'s header).
"""

import argparse
import shlex
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from benchmarks.common import (  # noqa: E402
    ROOT,
    benchmark_parser,
    device_name,
    emit,
    machine,
    parse_benchmark_args,
)
from benchmarks.overhead import add_measuring_options, medians, rounds  # noqa: E402

#: The offline data sets: ``../shared/data`` beside the checkout (or beside a folder above
#: it, for a git worktree kept in a sub-folder).
SHARED = next((folder / "shared" / "data" for folder in ROOT.parents
               if (folder / "shared" / "data").is_dir()), ROOT.parent / "shared" / "data")


@dataclass(frozen=True)
class Size:
    """One model size: its config and data, overrides that make it this model, and how
    many steps cover a few of its logging steps (its config's ``log_every_n_steps``)."""

    config: Path
    data_dir: Path
    overrides: tuple[str, ...] = ()
    steps: int = 60
    warmup: int = 5


#: The sizes, smallest first. Step counts: at least two logging steps in each timed window
#: at the config's cadence (50, 10, 20), and the three together within minutes on one
#: thread of this 2-core CPU.
SIZES: dict[str, Size] = {
    "mlp_mnist": Size(ROOT / "configs" / "mnist.yaml", SHARED / "mnist", steps=255, warmup=5),
    # At batch 500, not the config's 1980: a step of 1980 takes about 20 s on one thread
    # here, and the three sizes must fit in minutes. The same model and parameters; the
    # per-activation work scales with the batch, as the step does.
    "convnet_cifar": Size(ROOT / "configs" / "cifar.yaml", ROOT / "data" / "cifar10",
                          ("--data.init_args.batch_size", "500"), steps=12, warmup=1),
    # The satellite config's model swapped for a torchvision ResNet-18 from scratch (no
    # download here), with its own ReLUs (the config's ConvNet uses GELU).
    "resnet18_satellite": Size(ROOT / "configs" / "satellite.yaml", SHARED / "satellite",
                               ("--model", "TorchvisionNet", "--model.init_args.arch", "resnet18",
                                "--model.init_args.weights", "null",
                                "--model.init_args.activation", "null"), steps=43, warmup=2),
}


def summarize(windows: dict[str, list[dict]]) -> dict:
    """One size's row: the medians and ratios, parameters, and the per-step milliseconds
    (wall and CPU) of the raw loop and of netscope + diagnostics (medians over rounds)."""
    row = medians(windows)
    row["parameters"] = windows["raw"][0]["parameters"]

    def median_of(variant: str, key: str) -> float | None:
        values = [w[key] for w in windows.get(variant, []) if w[key] is not None]
        return statistics.median(values) if values else None

    for clock in ("", "cpu_"):
        row[f"raw_step_{clock}ms"] = median_of("raw", f"step_{clock}ms")
        for variant in windows:
            if variant != "raw":
                step, log = (median_of(variant, f"step_{clock}ms"),
                             median_of(variant, f"log_step_{clock}ms"))
                row[f"{variant}_step_{clock}ms"], row[f"{variant}_log_step_{clock}ms"] = step, log
                if step and log:
                    row[f"{variant}_log_step_extra_{clock}ms"] = log - step
    return row


def main() -> None:
    parser = benchmark_parser(__doc__.split("\n\n")[0])
    add_measuring_options(parser, ["raw", "netscope_diag"])
    parser.set_defaults(steps=None, warmup=None, repeats=2, precision="32-true", config=None)
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    for name in SIZES:
        parser.add_argument(f"--{name}_config", type=Path, default=None,
                            help=f"replace {name}'s config")
        parser.add_argument(f"--{name}_data", default=None, help=f"replace {name}'s data_dir")
        parser.add_argument(f"--{name}_args", default="",
                            help=f"more overrides for {name}, after its own, as one string: "
                                 f"--{name}_args='--data.init_args.batch_size 8'")
    args = parse_benchmark_args(parser)
    if "netscope_diag" not in args.variants:
        args.variants.append("netscope_diag")
    table = {}
    for name in args.sizes:
        size = SIZES[name]
        sized = argparse.Namespace(**vars(args))
        sized.config = getattr(args, f"{name}_config") or size.config
        sized.data_dir = getattr(args, f"{name}_data") or str(size.data_dir)
        sized.steps = args.steps or size.steps
        sized.warmup = args.warmup if args.warmup is not None else size.warmup
        if sized.steps <= sized.warmup:
            parser.error(f"{name}: --steps must be larger than --warmup")
        print(f"--- {name}: {sized.config}, {sized.steps} steps ({sized.warmup} untimed)",
              flush=True)
        overrides = (*size.overrides, *shlex.split(args.args),
                     *shlex.split(getattr(args, f"{name}_args")))
        windows = rounds(sized, overrides)
        table[name] = {**summarize(windows), "windows": windows,
                       "settings": {"config": str(sized.config), "steps": sized.steps,
                                    "warmup": sized.warmup, "overrides": list(overrides)}}
    emit({"sizes": table,
          "settings": {"repeats": args.repeats, "precision": args.precision,
                       "variants": args.variants, "keep_garbage": args.keep_garbage,
                       "device": device_name(args.accelerator), "machine": machine()}},
         args.json)


if __name__ == "__main__":
    main()
