"""Send the diagnostics' scalars, histograms and figures to whatever loggers the trainer has.

Scalars go to every logger through Lightning's ``Logger.log_metrics`` (W&B, TensorBoard,
the CSV history) and into ``trainer.callback_metrics`` (``metrics.json``, checkpoint
monitors). ``LightningModule.log`` would do the same, but it spends about a millisecond of
bookkeeping per key, and a ConvNet has around a hundred diagnostic keys per logging step.

Lightning's ``Logger`` interface carries scalars only, so histograms and images get a call
per logger kind: ``WandbLogger`` (``wandb.Histogram``, ``wandb.Image``, stamped with
``trainer/global_step`` as ``WandbLogger.log_metrics`` does), ``TensorBoardLogger``
(``add_histogram_raw``, ``add_image``); a ``CSVLogger`` or no logger takes nothing. Histograms
also go into the run directory (``histograms.jsonl``, whatever the loggers), where the
figures (:mod:`figures.histograms`) read them.

Only global rank zero writes, and nothing here is a collective call, so a DDP run never
waits on it.
"""

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

from netscope.callbacks.board import Board

DEFAULT_BINS = 64


@dataclass
class Histogram:
    """A histogram computed where the tensor lives, so only ``bins`` numbers reach the CPU."""

    counts: np.ndarray  # (bins,)
    edges: np.ndarray  # (bins + 1,); widened around a constant tensor
    min: float  # of the values themselves
    max: float
    num: int
    sum: float
    sum_squares: float


@torch.no_grad()
def histogram(tensor: torch.Tensor, bins: int = DEFAULT_BINS) -> Histogram | None:
    """Histogram of the finite values of ``tensor`` (``None`` when it has none).

    On an accelerator ``torch.histc`` runs where the tensor lives and only ``bins`` numbers
    cross to the host; on the CPU ``numpy.histogram`` is the faster of the two.
    """
    values = tensor.detach().flatten().float()
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        values = values[finite]
    if values.numel() == 0:
        return None
    if values.device.type == "cpu":
        array = values.numpy()
        counts, edges = np.histogram(array, bins=bins)
        return Histogram(counts, edges, float(array.min()), float(array.max()), array.size,
                         float(array.sum()), float(np.dot(array, array)))
    low, high, total, squares = torch.stack(
        [*torch.aminmax(values), values.sum(), values.square().sum()]).tolist()
    # A constant tensor (zero init) gets edges around its value, as numpy.histogram does.
    first, last = (low - 0.5, high + 0.5) if low == high else (low, high)
    counts = torch.histc(values, bins=bins, min=first, max=last)
    return Histogram(counts.cpu().numpy(), np.linspace(first, last, bins + 1), low, high,
                     values.numel(), total, squares)


def log_scalars(trainer: Trainer, metrics: dict[str, float], step: int) -> None:
    """Log scalars at ``step`` to every logger and record them as the trainer's latest values."""
    trainer.callback_metrics.update({name: torch.tensor(value) for name, value in metrics.items()})
    if trainer.is_global_zero:
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)


def media_loggers(trainer: Trainer) -> list[WandbLogger | TensorBoardLogger]:
    """The trainer's loggers that take histograms and images (none off global rank zero)."""
    if not trainer.is_global_zero:
        return []
    return [logger for logger in trainer.loggers
            if isinstance(logger, (WandbLogger, TensorBoardLogger))]


def log_histograms(trainer: Trainer, tensors: dict[str, torch.Tensor | Histogram | None],
                   step: int, bins: int = DEFAULT_BINS) -> None:
    """Log one histogram per name (tensors or precomputed :class:`Histogram`) at ``step``:
    into the run directory's ``histograms.jsonl`` and to W&B and TensorBoard."""
    if not trainer.is_global_zero:
        return  # one process writes; the others compute nothing
    histograms = {}
    for name, value in tensors.items():
        value = histogram(value, bins) if isinstance(value, torch.Tensor) else value
        if value is not None:
            histograms[name] = value
    if not histograms:
        return
    Board.of(trainer).run.append_histograms(
        [histogram_record(name, h, step, trainer.current_epoch) for name, h in histograms.items()])
    for logger in media_loggers(trainer):
        if isinstance(logger, WandbLogger):
            import wandb

            run = logger.experiment
            run.log({**{name: wandb.Histogram(np_histogram=(h.counts, h.edges))
                        for name, h in histograms.items()}, "trainer/global_step": step})
            # wandb keeps the last value of every logged key in the run summary, where 64
            # bins per histogram would bury the final metrics (wandb leet lists them one per
            # line). define_metric(name, summary="none") keeps scalars out, not histograms
            # (wandb 0.31: checked with `wandb leet inspect`), so they are removed once logged.
            for name in histograms:
                with contextlib.suppress(KeyError):  # mode="disabled" keeps no summary
                    del run.summary[name]
        else:
            for name, h in histograms.items():
                logger.experiment.add_histogram_raw(
                    name, min=h.min, max=h.max, num=h.num, sum=h.sum, sum_squares=h.sum_squares,
                    bucket_limits=h.edges[1:].tolist(), bucket_counts=h.counts.tolist(),
                    global_step=step,
                )


def histogram_record(name: str, h: Histogram, step: int, epoch: int) -> dict:
    """One line of ``histograms.jsonl``: the name, when it was taken, the bin counts and
    the ``bins + 1`` edges (9 significant digits: a float32 value exactly)."""
    return {"name": name, "step": step, "epoch": epoch,
            "counts": [int(round(float(c))) for c in h.counts],
            "edges": [float(f"{float(e):.9g}") for e in h.edges]}


def log_figure(trainer: Trainer, name: str, path: str | Path, step: int) -> None:
    """Send the image file ``path`` (a saved figure) to the loggers under ``name``."""
    for logger in media_loggers(trainer):
        if isinstance(logger, WandbLogger):
            import wandb

            logger.experiment.log({name: wandb.Image(str(path)), "trainer/global_step": step})
        else:
            from PIL import Image

            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
            logger.experiment.add_image(name, pixels, global_step=step, dataformats="HWC")


def log_findings(trainer: Trainer, findings: list, step: int) -> None:
    """Send the doctor's findings (``doctor.Finding``) to the loggers: on W&B a
    ``doctor/findings`` table and the run summary's ``findings``; on TensorBoard a markdown
    table as text."""
    columns = ["severity", "code", "where", "step", "message"]
    rows = [[getattr(f, c) for c in columns] for f in findings]
    for logger in media_loggers(trainer):
        if isinstance(logger, WandbLogger):
            import wandb

            logger.experiment.log({"doctor/findings": wandb.Table(columns=columns, data=rows),
                                   "trainer/global_step": step})
            logger.experiment.summary["findings"] = [f.to_dict() for f in findings]
        else:
            lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
            lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
            text = "\n".join(lines) if rows else "no findings"
            logger.experiment.add_text("doctor/findings", text, global_step=step)
