"""Per-class precision, recall, F1 and the confusion matrix of the test split.

Accuracy alone hides which classes a model confuses; this report shows it. The numbers
come from torchmetrics (accumulated over test batches, synchronized across processes);
the report is written into the run directory as CSV and PNG and sent to the loggers.
"""

import csv
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from netscope.callbacks.board import Board
from netscope.callbacks.console import say
from netscope.callbacks.logging_sinks import log_figure, log_scalars
from netscope.core.task import class_names
from netscope.figures.evaluation import draw_confusion

COLUMNS = ["class", "precision", "recall", "f1", "support"]


class EvaluationReport(Callback):
    """At the end of ``test``: ``test_per_class.csv``, ``test_confusion_matrix.csv`` and
    ``test_confusion_matrix.png`` in the run directory; a W&B table and image, or a
    TensorBoard figure and text; ``test/{precision,recall,f1}/<class>`` scalars.

    It reads the ``{"outputs", "targets"}`` that :meth:`models.base.BaseModel.test_step`
    returns; regression models get no report.

    Args:
        prefix: start of the file names and logged keys.
    """

    def __init__(self, prefix: str = "test") -> None:
        self.prefix = prefix
        self.metrics: MetricCollection | None = None
        self.class_names: list[str] = []

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        task = getattr(pl_module, "task", "classification")
        num_classes = 2 if task == "binary" else getattr(pl_module, "num_classes", None)
        if task == "regression" or not num_classes:  # a user's module that does not say
            self.metrics = None
            return
        self.class_names = class_names(getattr(pl_module, "class_names", None), num_classes)
        self.metrics = MetricCollection({
            "precision": MulticlassPrecision(num_classes, average=None),
            "recall": MulticlassRecall(num_classes, average=None),
            "f1": MulticlassF1Score(num_classes, average=None),
            "confusion": MulticlassConfusionMatrix(num_classes),
        }).to(pl_module.device)

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                          batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.metrics is None or not isinstance(outputs, dict) or "outputs" not in outputs:
            return
        scores, targets = outputs["outputs"], outputs["targets"]
        predictions = (scores > 0).long() if scores.dim() == 1 else scores.argmax(-1)
        self.metrics.update(predictions, targets.long())

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.metrics is None or not self.metrics["confusion"].update_called:
            return
        values = {name: value.cpu() for name, value in self.metrics.compute().items()}  # every rank
        # Synchronized already (torchmetrics), so logged directly: through ``self.log`` under
        # DDP, Lightning would advise sync_dist once per value.
        log_scalars(trainer, {f"{self.prefix}/{metric}/{name.replace('/', '_')}": float(value)
                              for metric in ("precision", "recall", "f1")
                              for name, value in zip(self.class_names, values[metric])},
                    trainer.global_step)
        if trainer.is_global_zero:
            self._write(trainer, values)

    # ------------------------------------------------------------------ rank zero
    def _write(self, trainer: Trainer, values: dict[str, torch.Tensor]) -> None:
        run = Board.of(trainer).run
        run.path.mkdir(parents=True, exist_ok=True)
        rows = self.table(values)
        per_class = run.report(self.prefix, "per_class")
        with open(per_class, "w", newline="") as file:
            csv.writer(file).writerows([COLUMNS, *rows])
        confusion = values["confusion"].long()
        with open(run.report(self.prefix, "confusion_matrix"), "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["true \\ predicted", *self.class_names])
            writer.writerows([name, *row] for name, row in zip(self.class_names, confusion.tolist()))
        png = draw_confusion(run.path, self.prefix)
        self._log(trainer, rows, png)
        say(f"Per-class {self.prefix} report: {per_class}, {png}")

    def table(self, values: dict[str, torch.Tensor]) -> list[list[Any]]:
        """Rows of ``class, precision, recall, f1, support``, then the macro and weighted averages."""
        support = values["confusion"].sum(1)
        rows = [[name, *(round(values[m][i].item(), 6) for m in ("precision", "recall", "f1")),
                 int(support[i])] for i, name in enumerate(self.class_names)]
        weights = support.double() / support.sum().clamp_min(1)
        for label, weight in (("macro avg", None), ("weighted avg", weights)):
            averages = [values[m].double().mean() if weight is None else (values[m].double() * weight).sum()
                        for m in ("precision", "recall", "f1")]
            rows.append([label, *(round(a.item(), 6) for a in averages), int(support.sum())])
        return rows

    def _log(self, trainer: Trainer, rows: list[list[Any]], png: Path) -> None:
        log_figure(trainer, f"{self.prefix}/confusion_matrix", png, trainer.global_step)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table(key=f"{self.prefix}/per_class", columns=COLUMNS, data=rows)
            elif isinstance(logger, TensorBoardLogger):
                header = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
                body = "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in rows)
                logger.experiment.add_text(f"{self.prefix}/per_class", header + body, trainer.global_step)
