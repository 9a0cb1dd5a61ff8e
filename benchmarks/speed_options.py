"""Which speed options pay on this machine: training images/s of a config's model with
precision (``bf16-mixed`` / ``32-true``), channels-last memory format and ``torch.compile``
switched on and off.

    python benchmarks/speed_options.py --json options.json      # configs/cifar.yaml
    python benchmarks/speed_options.py --steps 3 --repeats 1     # a quick look

Each variant trains the config's model with its optimizer on one augmented batch from its
datamodule (forward, loss, backward, step). Variants alternate and repeat; medians are
reported, of wall-clock images/s and of images per CPU-second of this process (steadier
on a machine shared with other jobs).
"""

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from lightning.pytorch import seed_everything  # noqa: E402

from benchmarks.common import (  # noqa: E402
    autocast,
    benchmark_parser,
    build,
    device_of,
    machine,
    parse_benchmark_args,
    synchronize,
    train_step,
)

#: name -> (trainer.precision, channels_last, torch.compile)
VARIANTS = {
    "bf16-mixed+channels_last": ("bf16-mixed", True, False),
    "bf16-mixed": ("bf16-mixed", False, False),
    "32-true+channels_last": ("32-true", True, False),
    "32-true": ("32-true", False, False),
    "bf16-mixed+channels_last+compile": ("bf16-mixed", True, True),
}


class Variant:
    """The config's model, optimizer and one batch, set up for one combination of options."""

    def __init__(self, config: Path, data_dir: str | None, precision: str, channels_last: bool,
                 compiled: bool, accelerator: str = "auto") -> None:
        seed_everything(0, verbose=False)
        self.cli = build(config, data_dir, "--trainer.logger", "false", "--trainer.precision",
                         precision, "--model.init_args.channels_last", str(channels_last).lower(),
                         accelerator=accelerator)
        self.device = device_of(self.cli)
        data = self.cli.datamodule
        data.setup("fit")
        inputs, targets, *extra = (t.to(self.device) for t in next(iter(data.train_dataloader())))
        self.targets = targets
        self.inputs = self.cli.model.prepare_inputs(data.augment(data.prepare_inputs(inputs), *extra))
        self.model = self.cli.model.to(self.device).train()
        if compiled:  # compiled in place: the one train step calls the model as usual
            self.model.compile()
        self.optimizer = self.cli.model.configure_optimizers()[0][0]
        self.steps(2)  # warm-up: allocations, kernel choice, compilation

    def steps(self, count: int) -> tuple[float, float]:
        """Train ``count`` steps; return (images per wall second, images per CPU second)."""
        synchronize(self.device)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            train_step(self.model, self.optimizer, self.inputs, self.targets, autocast(self.cli))
        synchronize(self.device)
        images = count * len(self.targets)
        return images / (time.perf_counter() - wall), images / (time.process_time() - cpu)


def main() -> None:
    parser = benchmark_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per sample")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip_compile", action="store_true", help="leave torch.compile out")
    args = parse_benchmark_args(parser)

    names = [n for n in VARIANTS if not (args.skip_compile and VARIANTS[n][2])]
    variants = {name: Variant(args.config, args.data_dir, *VARIANTS[name], args.accelerator)
                for name in names}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for _ in range(args.repeats):
        for name, variant in variants.items():
            samples[name].append(variant.steps(args.steps))
            print(f"{name:>34}: {samples[name][-1][0]:7.1f} img/s, "
                  f"{samples[name][-1][1]:7.1f} img/CPU-s", flush=True)
    result = {
        name: {"img_s": statistics.median(s[0] for s in samples[name]),
               "img_per_cpu_s": statistics.median(s[1] for s in samples[name])}
        for name in names
    }
    reference = result[names[0]]["img_per_cpu_s"]
    for name in names:
        result[name]["relative_to_first"] = result[name]["img_per_cpu_s"] / reference
    text = json.dumps({"variants": result, "settings": {"config": str(args.config),
                       "steps": args.steps, "repeats": args.repeats, "machine": machine()}}, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
