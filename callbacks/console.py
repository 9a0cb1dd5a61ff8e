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
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.model_summary.model_summary import (
    get_formatted_model_size,
    get_human_readable_count,
)
from torchmetrics import Metric, MetricCollection


@rank_zero_only
def say(text: str) -> None:
    """Print ``text`` so that it stays on screen: through the console of a live progress bar
    (rich prints it above the bar, which is then redrawn below it), else to stdout; on global
    rank zero only."""
    from rich import get_console

    console = get_console()
    if console.is_terminal:  # the console a RichProgressBar draws on (rich's global one)
        console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
    else:
        print(text, file=sys.stdout, flush=True)


class EpochLinePrinter(Callback):
    """Print ``epoch N/M`` with the epoch's task metrics and its duration."""

    def __init__(self, prefixes: tuple[str, ...] = ("train/", "val/", "train_", "val_")) -> None:
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
        say(f"epoch {trainer.current_epoch + 1}/{total}  " + "  ".join(values)
                       + f"  ({time.monotonic() - self.epoch_started:.1f} s)")


class EvaluationLines(Callback):
    """One line with the task metrics of a test (and of the ``validate`` command): Lightning's
    own table is turned off (``verbose=False``); the per-class report is in its files."""

    #: the metrics worth a line: the loss and the task's own (per-class ones are in the report)
    NAMES = ("loss", "acc", "mse", "mae")

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.say(trainer, "test")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "validate":
            self.say(trainer, "val")

    def say(self, trainer: Trainer, stage: str) -> None:
        values = [f"{name} {float(value):.4f}" for name, value in sorted(trainer.callback_metrics.items())
                  if name.startswith((f"{stage}/", f"{stage}_")) and isinstance(value, torch.Tensor)
                  and value.numel() == 1 and name.split("/", 1)[-1].split("_", 1)[-1] in self.NAMES]
        if values and trainer.is_global_zero:
            say(f"{stage}: " + "  ".join(values))


class ModelTable(RichModelSummary):
    """Lightning's model summary table of the model's layers: without the metric and loss
    objects a LightningModule also holds (no parameters, nothing to see), without the FLOPs
    column when FLOPs are unknown (Lightning counts them only for a model with an
    ``example_input_array``), and with the totals on one line."""

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.hidden = {name for name, child in pl_module.named_children()
                       if isinstance(child, (Metric, MetricCollection))
                       or (type(child).__name__.endswith("Loss") and not any(child.parameters()))}
        super().on_fit_start(trainer, pl_module)

    def summarize(self, summary_data: list[tuple[str, list[str]]], total_parameters: int,
                  trainable_parameters: int, model_size: float,
                  total_training_modes: dict[str, int], total_flops: int,
                  **summarize_kwargs: Any) -> None:
        from rich import get_console
        from rich.table import Table

        names = dict(summary_data).get("Name", [])
        keep = [i for i, name in enumerate(names) if name not in getattr(self, "hidden", ())]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        columns = [(name, values) for name, values in summary_data
                   if name != "FLOPs" or total_flops]
        for name, _ in columns:
            justify = "right" if name in ("Params", "Params per Device", "In sizes", "Out sizes", "FLOPs") else "left"
            table.add_column(name, justify=justify, style="dim" if name == " " else None)
        for index in keep:
            table.add_row(*(values[index] for _, values in columns))
        frozen = total_parameters - trainable_parameters
        console = get_console()
        console.print(table)
        console.print(f"Parameters: {get_human_readable_count(int(trainable_parameters)).strip()} trainable, "
                      f"{get_human_readable_count(int(frozen)).strip()} frozen, "
                      f"{get_formatted_model_size(model_size)} MB")
