"""What a data set asks of a model; shared by datamodules (which declare it) and models."""

from typing import Literal

#: ``classification``: one logit per class, cross-entropy. ``binary``: two classes with a
#: single logit and binary cross-entropy (the 2-4-1 XOR network). ``regression``: one output
#: per target, mean squared error.
Task = Literal["classification", "binary", "regression"]


def class_names(names: list[str] | None, count: int) -> list[str]:
    """``names`` when there is one per class, else the class indices as names."""
    names = list(names or [])
    return names if len(names) == count else [str(i) for i in range(count)]
