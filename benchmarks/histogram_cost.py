"""What the histograms cost in one fit: taking them, writing ``histograms.jsonl``, drawing
the three histogram figures (and, for comparison, the other training figures).

    python benchmarks/histogram_cost.py fit --config configs/mnist.yaml \
        --data.init_args.data_dir ../shared/data/mnist --trainer.max_epochs 3 --trainer.logger false

Runs the command as ``main.py`` would, with the functions that do that work wrapped in
timers, and prints one JSON line: seconds spent in each and in the whole command. The
timers wrap module attributes the callbacks look up at call time, so nothing else changes.
"""

import functools
import json
import sys
import time
from collections.abc import Callable

import torch

import netscope.callbacks.activations as activations
import netscope.callbacks.figures as figures
import netscope.callbacks.histograms as histograms
from netscope.core.rundir import RunDir
from netscope.main import main

SPENT: dict[str, float] = {"activation_histograms": 0.0, "log_histograms": 0.0,
                           "histograms_file": 0.0, "histogram_figures": 0.0,
                           "other_training_figures": 0.0}


def timed(key: str, function: Callable) -> Callable:
    """``function``, adding the seconds each call takes to ``SPENT[key]``."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            SPENT[key] += time.perf_counter() - start
    return wrapper


def run(args: list[str]) -> dict[str, float]:
    """Run ``main(args)`` with the timers in place; the seconds spent, by part."""
    activations.histogram = timed("activation_histograms", activations.histogram)  # in the hooks
    activations.log_histograms = timed("log_histograms", activations.log_histograms)
    histograms.log_histograms = timed("log_histograms", histograms.log_histograms)
    RunDir.append_histograms = timed("histograms_file", RunDir.append_histograms)
    figures.draw_histograms = timed("histogram_figures", figures.draw_histograms)
    figures.draw_training = timed("other_training_figures", figures.draw_training)
    start = time.perf_counter()
    try:
        main(args)
    except SystemExit as stop:
        if stop.code:
            raise
    return {**{k: round(v, 3) for k, v in SPENT.items()},
            "command_s": round(time.perf_counter() - start, 3)}


if __name__ == "__main__":
    torch.set_num_threads(1)  # a shared machine: one thread is steadier (benchmarks/overhead.py)
    print(json.dumps(run(sys.argv[1:])))
