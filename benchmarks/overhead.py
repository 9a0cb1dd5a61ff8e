"""What netscope costs: training images/s of a plain PyTorch loop vs netscope vs netscope
with its default diagnostics vs W&B's ``watch``, on the same model, data and number of steps.

    python benchmarks/overhead.py --json overhead.json            # configs/cifar.yaml
    python benchmarks/overhead.py --steps 12 --repeats 1 --log_every_n_steps 4   # a quick look
    python benchmarks/overhead.py --variants raw wandb_watch    # some of the variants
    python benchmarks/overhead.py --accelerator gpu --json overhead.json   # on a GPU, where
                                                   # every host-device sync shows

On a machine shared with other jobs use ``--threads 1``: a multi-threaded step waits for
its slowest thread, so one busy core slows it several-fold, and unevenly.

The variants (:data:`VARIANTS`) run interleaved (raw, netscope, netscope + diagnostics,
W&B's watch, raw, ...) and repeated in one process, so drifts of a shared machine hit all
of them alike; medians are reported. Before each variant the garbage of the previous one
is collected (its trainer, model and data sit in reference cycles until a collection;
left there, the next fit ran beside it with more CPU time and page faults per step:
``--keep_garbage`` shows it).

"Diagnostics" are the callbacks a command runs with the config: those of
``netscope/defaults.yaml`` (the doctor included) and any the config adds; without
them the trainer keeps netscope's own (run summary, console lines, checkpointing) and its
loggers (W&B offline and CSV, as a user gets them). ``wandb_watch`` is that trainer
without diagnostics plus W&B's own ``watch(model, log="all", log_freq=log_every_n_steps)``:
parameter and gradient histograms at the diagnostics' cadence. Each timed window starts
after ``--warmup`` steps and covers everything done per step (data, augmentation, step,
callbacks, logging), but not start-up, validation or the end of the fit.

Prints one JSON object: ``<variant>_img_s`` (medians: ``raw_img_s``, ``netscope_img_s``,
``netscope_diag_img_s``, ``wandb_watch_img_s``), ``<variant>_vs_raw``, every sample, each
window's clocks (wall and process CPU seconds, page faults, median logging and ordinary
step ms), and the settings; ``--json PATH`` also writes it there.
"""

import argparse
import shlex
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from lightning.pytorch import seed_everything  # noqa: E402
from lightning.pytorch.loggers import WandbLogger  # noqa: E402

from benchmarks.common import (  # noqa: E402
    PlainLoop,
    benchmark_parser,
    build,
    device_name,
    emit,
    fit_overrides,
    lightning_window,
    machine,
    parse_benchmark_args,
)
from benchmarks.timers import Window, collect_garbage  # noqa: E402
from netscope.cli import NetscopeCLI  # noqa: E402


def watch_all(cli: NetscopeCLI) -> None:
    """W&B's ``watch(log="all")`` on the model, at the trainer's logging cadence (the
    diagnostics' default), through the trainer's own (offline) ``WandbLogger``."""
    loggers = [lg for lg in cli.trainer.loggers if isinstance(lg, WandbLogger)]
    if not loggers:
        raise SystemExit("wandb_watch needs the config's WandbLogger (trainer.logger)")
    loggers[0].watch(cli.model, log="all", log_freq=cli.trainer.log_every_n_steps)


def without_log_calls(cli: NetscopeCLI) -> None:
    """The model's ``self.log``/``self.log_dict`` made no-ops (its metrics still update):
    what Lightning's logging bookkeeping costs per step. A measurement only: such a fit
    logs no loss or accuracy."""
    cli.model.log = lambda *args, **kwargs: None
    cli.model.log_dict = lambda *args, **kwargs: None


@dataclass(frozen=True)
class Variant:
    """How to build one variant: the plain loop, or a fit with these command-line
    overrides and, optionally, something done to the built objects before the fit."""

    overrides: tuple[str, ...] = ()
    plain: bool = False
    before_fit: Callable[[NetscopeCLI], None] | None = None


#: Every variant, by name, in the order a round runs them. A new one is one entry here
#: (its JSON keys ``<name>_img_s`` and ``<name>_vs_raw`` follow).
VARIANTS: dict[str, Variant] = {
    "raw": Variant(plain=True),  # a hand-written loop (benchmarks/common.py)
    "netscope": Variant(("--trainer.callbacks=[]",)),  # netscope's trainer, no diagnostics
    "netscope_diag": Variant(),  # the config's callbacks: diagnostics and the doctor
    "wandb_watch": Variant(("--trainer.callbacks=[]",), before_fit=watch_all),
    # the config's callbacks plus the curvature instruments at their default cadence
    "netscope_curvature": Variant(("--trainer.callbacks+=Curvature",)),
    # netscope's trainer, no diagnostics, and the model's per-step log calls skipped
    "netscope_no_log": Variant(("--trainer.callbacks=[]",), before_fit=without_log_calls),
}


def measure(name: str, args: argparse.Namespace, root: str,
            extra: tuple[str, ...] = ()) -> Window:
    """The timed window of one variant, built fresh from the config (plus ``extra``
    command-line overrides)."""
    variant = VARIANTS[name]
    seed_everything(0, verbose=False)
    extra = list(extra)
    if args.log_every_n_steps:
        extra += ["--trainer.log_every_n_steps", str(args.log_every_n_steps)]
    if args.precision:
        extra += ["--trainer.precision", args.precision]
    if variant.plain:
        cli = build(args.config, args.data_dir, "--trainer.logger", "false", *extra,
                    accelerator=args.accelerator)
        window = PlainLoop(cli).train(args.steps, args.warmup)
    else:
        cli = build(args.config, args.data_dir, *fit_overrides(args.steps, root), *extra,
                    *variant.overrides, accelerator=args.accelerator)
        window = lightning_window(cli, args.steps, args.warmup, variant.before_fit)
    window.parameters = sum(p.numel() for p in cli.model.parameters())
    return window


def add_measuring_options(parser: argparse.ArgumentParser, variants: list[str]) -> None:
    """The options of a measurement in rounds (steps, warm-up, rounds, variants, cadence,
    precision, garbage), shared with ``model_sizes.py``."""
    parser.add_argument("--steps", type=int, default=60, help="training steps per measurement")
    parser.add_argument("--warmup", type=int, default=10, help="untimed first steps")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the variants")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=variants,
                        help="which variants a round runs (raw is always among them)")
    parser.add_argument("--log_every_n_steps", type=int, default=None,
                        help="override the config's logging (and diagnostics) interval")
    parser.add_argument("--precision", default=None,
                        help="override the config's trainer.precision (e.g. 32-true on a CPU "
                             "without AVX512-BF16, where bf16 autocast is emulated)")
    parser.add_argument("--args", default="",
                        help="more config overrides for every variant, as one string: "
                             "--args='--data.init_args.batch_size 500'")
    parser.add_argument("--keep_garbage", action="store_true",
                        help="do not collect the previous variant's garbage before each one")


def rounds(args: argparse.Namespace, extra: tuple[str, ...] = ()) -> dict[str, list[dict]]:
    """Every variant of ``args.variants``, interleaved, ``args.repeats`` times: each
    window's summary (:meth:`Window.summary`) plus the objects collected before it."""
    names = ["raw", *[v for v in args.variants if v != "raw"]]
    windows: dict[str, list[dict]] = {v: [] for v in names}
    with tempfile.TemporaryDirectory(prefix="netscope-overhead-") as root:
        for round_ in range(args.repeats):
            for name in names:
                collected = collect_garbage(args.keep_garbage)
                window = measure(name, args, root, extra).summary()
                windows[name].append({**window, "garbage_collected": collected})
                print(f"round {round_ + 1}/{args.repeats} {name:>13}: {window['img_s']:8.1f} "
                      f"img/s, {window['cpu_img_s']:8.1f} per CPU s, {window['cpu_s']:6.2f} CPU "
                      f"s, {window['minor_faults']:7d} page faults", flush=True)
    return windows


def medians(windows: dict[str, list[dict]]) -> dict[str, float]:
    """``<variant>_img_s`` (median over rounds) and ``<variant>_vs_raw`` for each variant,
    and the same by the process's CPU seconds (``<variant>_cpu_img_s``, ``_cpu_vs_raw``:
    steadier on a shared machine; W&B's writer process is not in them)."""
    result = {}
    for clock in ("", "cpu_"):
        for v, ws in windows.items():
            result[f"{v}_{clock}img_s"] = statistics.median(w[f"{clock}img_s"] for w in ws)
        for v in windows:
            if v != "raw":
                result[f"{v}_{clock}vs_raw"] = (result[f"{v}_{clock}img_s"]
                                                / result[f"raw_{clock}img_s"])
    return result


def main() -> None:
    parser = benchmark_parser(__doc__.split("\n\n")[0])
    add_measuring_options(parser, ["raw", "netscope", "netscope_diag", "wandb_watch"])
    args = parse_benchmark_args(parser)
    if args.steps <= args.warmup:
        parser.error("--steps must be larger than --warmup")
    windows = rounds(args, tuple(shlex.split(args.args)))
    result = {
        **medians(windows),
        "samples_img_s": {v: [w["img_s"] for w in ws] for v, ws in windows.items()},
        "windows": windows,
        "settings": {"config": str(args.config), "steps": args.steps, "warmup": args.warmup,
                     "repeats": args.repeats, "log_every_n_steps": args.log_every_n_steps,
                     "precision": args.precision or "the config's",
                     "keep_garbage": args.keep_garbage, "args": args.args,
                     "device": device_name(args.accelerator), "machine": machine()},
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
