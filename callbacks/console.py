"""What a run prints while it trains: one line per epoch for logs that are not a
terminal (CI, clusters), the model summary without its empty FLOPs column, and
:func:`say`, the one way netscope's callbacks print a message during a fit.

A progress bar redrawn with carriage returns turns a log file into noise; the epoch
printer writes one readable line per epoch instead.
"""

import sys
import time
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import RichModelSummary
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.model_summary.model_summary import (
    get_formatted_model_size,
    get_human_readable_count,
)


def say(text: str) -> None:
    """Print ``text`` so that it stays on screen: through the console of a live progress bar
    (rich prints it above the bar, which is then redrawn below it), else to stdout."""
    from rich import get_console

    console = get_console()
    if console.is_terminal:  # the console a RichProgressBar draws on (rich's global one)
        console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
    else:
        print(text, file=sys.stdout, flush=True)


class EpochLinePrinter(Callback):
    """Print ``epoch N/M`` with the epoch's task metrics and its duration."""

    def __init__(self, prefixes: tuple[str, ...] = ("train/", "val/")) -> None:
        self.prefixes = prefixes
        self.epoch_started = time.monotonic()

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.epoch_started = time.monotonic()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        values = []
        for name, value in sorted(trainer.callback_metrics.items()):
            if (name.startswith(self.prefixes) and not name.endswith(("_step", "_epoch"))
                    and isinstance(value, torch.Tensor) and value.numel() == 1):
                values.append(f"{name} {value.item():.4f}")
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        rank_zero_info(f"epoch {trainer.current_epoch + 1}/{total}  " + "  ".join(values)
                       + f"  ({time.monotonic() - self.epoch_started:.1f} s)")


class ModelTable(RichModelSummary):
    """Lightning's model summary table, without the FLOPs column and total when they are
    unknown (Lightning counts FLOPs only for a model with an ``example_input_array``, and
    otherwise prints a column of zeros and "Total FLOPs: 0")."""

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], total_parameters: int,
                  trainable_parameters: int, model_size: float,
                  total_training_modes: dict[str, int], total_flops: int,
                  **summarize_kwargs: Any) -> None:
        if total_flops:
            RichModelSummary.summarize(summary_data, total_parameters, trainable_parameters,
                                       model_size, total_training_modes, total_flops,
                                       **summarize_kwargs)
            return
        from rich import get_console
        from rich.table import Table

        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        for name, _ in columns:
            justify = "right" if name in ("Params", "Params per Device", "In sizes", "Out sizes") else "left"
            table.add_column(name, justify=justify, style="dim" if name == " " else None)
        for row in zip(*(values for _, values in columns)):
            table.add_row(*row)
        grid = Table.grid(expand=True)
        frozen = total_parameters - trainable_parameters
        for label, value in (
            ("Trainable params", get_human_readable_count(int(trainable_parameters))),
            ("Non-trainable params", get_human_readable_count(int(frozen))),
            ("Total params", get_human_readable_count(int(total_parameters))),
            ("Total estimated model params size (MB)", get_formatted_model_size(model_size)),
        ):
            grid.add_row(f"[bold]{label}[/]: {value}")
        console = get_console()
        console.print(table)
        console.print(grid)
