"""Tables: one row per sample in a CSV file, a target column and feature columns.

Classification or regression (told by the target, or chosen); numeric features
standardized with the training split's mean and std; categorical (text) features one-hot
encoded, or refused; a seeded, stratified split into train, validation and test.
"""

import csv
import math
from pathlib import Path
from typing import Literal

import torch

from netscope.core.errors import UserError
from netscope.datamodules.base import BaseDataModule, Split
from netscope.datamodules.splits import split_indices

TaskChoice = Literal["auto", "classification", "binary", "regression"]

#: A numeric target with more distinct values than this (or any fraction) is a regression
#: target when ``task`` is ``auto``.
MAX_CLASSES = 20


class CSVDataModule(BaseDataModule):
    """A table from a CSV file with a header row: classification or regression.

    The facts a model needs are known as soon as it is made (the file is small and read
    then): ``num_classes`` (classes, or 1 regression target), ``input_shape`` (the number
    of features after encoding), ``task`` and ``class_names``.
    """

    def __init__(
        self,
        data_dir: str,
        target: str | None = None,
        features: list[str] | None = None,
        task: TaskChoice = "auto",
        categorical: Literal["one_hot", "refuse"] = "one_hot",
        standardize: bool = True,
        test_fraction: float = 0.2,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        keep_on_device: bool = True,
    ) -> None:
        """Read the table now (small), so its facts reach the model; the other arguments
        are :class:`BaseDataModule`'s.

        Args:
            data_dir: the CSV file, or a folder holding exactly one ``.csv`` file.
            target: the column to predict (default: the last one).
            features: the columns to predict it from (default: all the others).
            task: ``auto`` (a text target or a whole-number target with at most 20 values
                is classification, any other number regression), or the task by name.
            categorical: feature columns holding text: ``one_hot`` (one 0/1 feature per
                value seen in the training split) or ``refuse`` (an error naming them).
            standardize: scale each feature to zero mean and unit variance, with the
                training split's statistics.
            test_fraction: share of the rows held out for testing (of every class).
            batch_size: training batch size.
            eval_batch_size: batch size for validation, test and predict (default: ``batch_size``).
            val_fraction: share of the remaining rows held out for validation.
            split_seed: seed of the splits and of the test split's order (fixed, whatever
                the training seed).
        """
        super().__init__(data_dir=data_dir, batch_size=batch_size, eval_batch_size=eval_batch_size,
                         val_fraction=val_fraction, split_seed=split_seed,
                         keep_on_device=keep_on_device)
        if not 0.0 < test_fraction < 1.0:
            raise UserError(f"test_fraction must be between 0 and 1, got {test_fraction}")
        self.path = csv_file(data_dir)
        self.header, self.rows = read_table(self.path)
        self.target = target or self.header[-1]
        if self.target not in self.header:
            raise UserError(f"--data.init_args.target {self.target}: {self.path} has no such "
                            f"column; its columns are {', '.join(self.header)}.")
        self.features = list(features) if features else [c for c in self.header if c != self.target]
        missing = [c for c in self.features if c not in self.header]
        if missing or self.target in self.features:
            wrong = missing or [self.target]
            raise UserError(f"--data.init_args.features: {', '.join(wrong)} "
                            f"{'is not a column' if missing else 'is the target'} of {self.path} "
                            f"(columns: {', '.join(self.header)}).")
        self.categorical = categorical
        self.standardize = standardize
        self.test_fraction = test_fraction
        values = self.column(self.target)
        self.task = decide_task(values, task, self.target)
        if self.task == "regression":
            self.class_names, self.num_classes = [self.target], 1
        else:
            self.class_names = sorted(set(values), key=_natural)
            self.num_classes = len(self.class_names)
            if self.task == "binary" and self.num_classes != 2:
                raise UserError(f"task binary needs two classes; {self.target} has "
                                f"{self.num_classes}. Use task classification.")
        self.encoders = self.plan_features()
        self.input_shape = (sum(len(e) if e else 1 for e in self.encoders.values()),)

    def column(self, name: str) -> list[str]:
        index = self.header.index(name)
        return [row[index] for row in self.rows]

    def plan_features(self) -> dict[str, list[str] | None]:
        """Per feature, ``None`` for a number, or the categories it is one-hot encoded into."""
        plan: dict[str, list[str] | None] = {}
        text = []
        for name in self.features:
            values = self.column(name)
            empty = [i + 2 for i, v in enumerate(values) if v.strip() == ""]
            if empty:
                raise UserError(f"{self.path}: column {name} is empty on line {empty[0]} (and "
                                f"{len(empty) - 1} more); fill or drop the missing values first.")
            if all(_is_number(v) for v in values):
                plan[name] = None
            else:
                text.append(name)
                plan[name] = sorted(set(values), key=_natural)
        if text and self.categorical == "refuse":
            raise UserError(f"{self.path}: the features {', '.join(text)} hold text, and "
                            f"categorical is refuse. Use --data.init_args.categorical one_hot, or "
                            f"leave them out with --data.init_args.features.")
        return plan

    def encode(self, rows: list[list[str]]) -> torch.Tensor:
        """The rows' features as floats, one-hot columns in place of categorical ones."""
        columns = []
        for name, categories in self.encoders.items():
            index = self.header.index(name)
            if categories is None:
                columns.append(torch.tensor([[float(r[index])] for r in rows]))
            else:
                positions = torch.tensor([categories.index(r[index]) for r in rows])
                columns.append(torch.nn.functional.one_hot(positions, len(categories)).float())
        return torch.cat(columns, dim=1)

    def targets(self, rows: list[list[str]]) -> torch.Tensor:
        index = self.header.index(self.target)
        if self.task == "regression":
            return torch.tensor([float(r[index]) for r in rows])
        return torch.tensor([self.class_names.index(r[index]) for r in rows])

    def load_splits(self) -> dict[str, Split]:
        inputs, targets = self.encode(self.rows), self.targets(self.rows)
        index = split_indices(targets, {"test": self.test_fraction}, self.split_seed,
                              stratify=self.task != "regression")
        train, test = index["train"], index["test"]
        if self.standardize:  # with the training rows' statistics only (nothing from test)
            mean, std = inputs[train].mean(0), inputs[train].std(0)
            inputs = (inputs - mean) / torch.where(std > 0, std, torch.ones_like(std))
        return {"train": (inputs[train], targets[train]), "test": (inputs[test], targets[test])}


def csv_file(data_dir: str) -> Path:
    """The CSV file ``data_dir`` names (a file, or a folder with exactly one ``.csv``)."""
    path = Path(data_dir)
    if path.is_file():
        return path
    found = sorted(path.glob("*.csv")) if path.is_dir() else []
    if len(found) == 1:
        return found[0]
    what = f"holds {len(found)} CSV files ({', '.join(f.name for f in found)})" if found \
        else "is not a CSV file or a folder with one"
    raise UserError(f"--data.init_args.data_dir {data_dir} {what}. Give the path of the CSV file.")


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a CSV file, every row as wide as the header."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            lines = [row for row in csv.reader(file) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"Cannot read {path} as CSV ({type(error).__name__}: {error}).") from None
    if len(lines) < 3:
        raise UserError(f"{path} has {max(len(lines) - 1, 0)} data rows: a table needs a header "
                        f"row and some samples.")
    header, rows = [c.strip() for c in lines[0]], lines[1:]
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise UserError(f"{path}, line {number}: {len(row)} values for {len(header)} columns.")
    return header, rows


def decide_task(values: list[str], task: TaskChoice, name: str) -> str:
    """The task for a target column (see :class:`CSVDataModule`'s ``task``)."""
    numeric = all(_is_number(v) for v in values)
    if task == "regression" and not numeric:
        raise UserError(f"task regression needs a numeric target; {name} holds text.")
    if task != "auto":
        return task
    if not numeric:
        return "classification"
    numbers = [float(v) for v in values]
    whole = all(math.isfinite(x) and x == int(x) for x in numbers)
    return "classification" if whole and len(set(numbers)) <= MAX_CLASSES else "regression"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _natural(value: str) -> tuple:
    """Sort numbers as numbers, text as text."""
    return (0, float(value), "") if _is_number(value) else (1, 0.0, value)
