"""The one way netscope splits a data set: seeded, stratified by class.

Every datamodule that carves validation (or test) samples out of another split calls
:func:`split_indices`, so a hold-out depends only on the labels and ``split_seed``: the
same samples are held out whatever the training seed, model or batch size.
"""

import torch


def share(count: int, fraction: float) -> int:
    """``round(fraction * count)``, at least 1 when the fraction is positive and ``count``
    has samples to spare, so that a small class still appears in every split."""
    if fraction <= 0:
        return 0
    return min(max(1, round(fraction * count)), max(count - 1, 0))


def split_indices(targets: torch.Tensor, fractions: dict[str, float], seed: int,
                  stratify: bool = True) -> dict[str, torch.Tensor]:
    """Sorted sample indices of each named split, and of ``"train"`` for the rest.

    One seeded permutation of all samples; within each class (or over all samples, when
    ``stratify`` is false, as for regression targets) the first ``fractions[name]`` of that
    order go to each split in turn, the remainder to ``"train"``.

    Args:
        targets: one label per sample.
        fractions: share of each class per split, e.g. ``{"test": 0.2, "val": 0.1}``.
        seed: the permutation's seed.
        stratify: split every class by the same fractions.
    """
    order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(seed))
    shuffled = targets[order]
    groups = [order[shuffled == label] for label in shuffled.unique()] if stratify else [order]
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in [*fractions, "train"]}
    for members in groups:
        start = 0
        for name, fraction in fractions.items():
            count = share(len(members), fraction)
            parts[name].append(members[start:start + count])
            start += count
        parts["train"].append(members[start:])
    return {name: torch.cat(pieces).sort().values for name, pieces in parts.items()}


def interleaved_order(targets: torch.Tensor, seed: int, stratify: bool = True) -> torch.Tensor:
    """A fixed random order of all samples in which every class is spread evenly.

    Each class is shuffled (seeded), and its ``k``-th of ``n`` samples is placed at
    ``(k + u) / n`` along the order, ``u`` a random offset per class: any stretch of the
    order holds each class in proportion to its size. So the first batches of an evaluation
    cut short (``limit_test_batches``) see every class, where a split stored class by class
    would show only its first classes. Without ``stratify`` (regression targets): one
    seeded permutation.

    Args:
        targets: one label per sample.
        seed: the order's seed (the same order every run).
        stratify: spread each class evenly; otherwise a plain permutation.
    """
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(targets), generator=generator)
    if not stratify or len(targets) == 0:
        return order
    labels = targets[order].cpu()
    position = torch.empty(len(targets), dtype=torch.float64)
    for label in labels.unique():
        members = (labels == label).nonzero().flatten()  # this class, in shuffled order
        offset = torch.rand((), generator=generator, dtype=torch.float64)
        position[members] = (torch.arange(len(members), dtype=torch.float64) + offset) / len(members)
    return order[position.argsort(stable=True)]
