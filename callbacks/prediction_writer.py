"""Write what ``predict`` returns as a CSV in the run directory: one row per input.

Lightning's :class:`BasePredictionWriter` calls us per batch, so predictions never pile
up in memory. Rows are mapped back to files through the datamodule's ``predict_files``
(``datamodules.ImageFolderDataModule`` batches ``(images, index)``); other datamodules get
row numbers. Files the datamodule could not read are listed beside the predictions.

Names are written as they are: UTF-8 whatever the machine's locale, and quoted by the
``csv`` module wherever a comma, a quote or a line break in a file name needs it, so that
any CSV reader gets the name back exactly. (Names that are not UTF-8 never get this far:
the datamodule skips them, and lists each odd byte of their names as ``\\xNN``.)
"""

import csv
from pathlib import Path
from typing import Any, TextIO

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from netscope.core.task import class_names


class PredictionWriter(BasePredictionWriter):
    """``predictions.csv``: ``file, predicted_class, probability`` and one ``p_<class>``
    column per class (regression: ``output_<i>`` columns); ``predictions_unreadable.csv``:
    ``file, error`` for every file that was skipped.

    Args:
        filename: name of the CSV, written into the run directory (``trainer.default_root_dir``);
            under several processes each writes ``<stem>-rank<N>.csv``.
    """

    def __init__(self, filename: str = "predictions.csv") -> None:
        super().__init__(write_interval="batch")
        self.filename = filename
        self._file: TextIO | None = None
        self._writer: Any = None
        self._rows = 0
        self._header_written = False
        self.path: Path | None = None

    def _output(self, trainer: Trainer, name: str) -> Path:
        path = Path(trainer.default_root_dir) / name
        if trainer.world_size > 1:
            path = path.with_name(f"{path.stem}-rank{trainer.global_rank}{path.suffix}")
        return path

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.path = self._output(trainer, self.filename)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._rows = 0
        self._header_written = False
        skipped = getattr(trainer.datamodule, "predict_skipped", None) or {}
        if skipped and trainer.is_global_zero:
            unreadable = self._output(trainer, Path(self.filename).stem + "_unreadable.csv")
            with open(unreadable, "w", newline="", encoding="utf-8") as file:
                csv.writer(file).writerows([["file", "error"], *skipped.items()])
            names = ", ".join(list(skipped)[:10]) + (" ..." if len(skipped) > 10 else "")
            rank_zero_warn(f"{len(skipped)} file(s) could not be read and get no prediction "
                           f"(listed in {unreadable}): {names}")

    def write_on_batch_end(self, trainer: Trainer, pl_module: LightningModule, prediction: Any,
                           batch_indices: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self._writer is None:
            return
        outputs = prediction.float().cpu()
        names = self._names(trainer, batch, len(outputs))
        task = getattr(pl_module, "task", "classification")
        if not self._header_written:
            self._writer.writerow(self._header(pl_module, task, outputs))
            self._header_written = True
        for name, row in zip(names, outputs):
            self._writer.writerow([name, *self._row(pl_module, task, row)])
        self._rows += len(outputs)

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._file is not None:
            self._file.close()
            self._file = self._writer = None
            rank_zero_info(f"Wrote {self._rows} prediction(s) to {self.path}")

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if self._file is not None:
            self._file.close()
            self._file = self._writer = None

    # ------------------------------------------------------------------- rows
    def _names(self, trainer: Trainer, batch: Any, count: int) -> list[str]:
        """The file of each row, or its running number when the data has no file names."""
        files = getattr(trainer.datamodule, "predict_files", None)
        indexed = isinstance(batch, (list, tuple)) and len(batch) > 1 and isinstance(batch[1], torch.Tensor)
        if files and indexed:
            return [files[i] for i in batch[1].tolist()]
        return [str(self._rows + i) for i in range(count)]

    @staticmethod
    def _classes(pl_module: LightningModule, count: int) -> list[str]:
        return class_names(getattr(pl_module, "class_names", None), count)

    def _header(self, pl_module: LightningModule, task: str, outputs: torch.Tensor) -> list[str]:
        match task:
            case "regression":
                width = outputs.shape[-1] if outputs.dim() > 1 else 1
                return ["file", *(f"output_{i}" for i in range(width))]
            case _:
                classes = self._classes(pl_module, 2 if task == "binary" else outputs.shape[-1])
                return ["file", "predicted_class", "probability", *(f"p_{c}" for c in classes)]

    def _row(self, pl_module: LightningModule, task: str, row: torch.Tensor) -> list[Any]:
        if task == "regression":
            return [round(v, 6) for v in row.reshape(-1).tolist()]
        if task == "binary":
            row = torch.stack([1 - row.reshape(()), row.reshape(())])
        classes = self._classes(pl_module, len(row))
        best = int(row.argmax())
        return [classes[best], round(row[best].item(), 6), *(round(v, 6) for v in row.tolist())]
