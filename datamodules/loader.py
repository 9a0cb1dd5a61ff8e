"""Batches straight from tensors held in memory.

A torch ``DataLoader`` pays per-sample Python work (``__getitem__``, collate) and worker
processes; for data sets that fit in memory as one tensor, indexing the tensor with a
batch of indices is orders of magnitude cheaper. No library offers this as a loader that
also shards itself across DDP ranks, so it is written here.
"""

import math
from collections.abc import Iterator

import torch


class TensorLoader:
    """Iterate over aligned tensors in batches, reshuffled by ``randperm`` every pass.

    Args:
        tensors: tensors with the same first dimension (e.g. images and labels).
        batch_size: samples per batch.
        shuffle: draw a new permutation on every pass (seeded: runs repeat exactly).
        drop_last: drop the last incomplete batch.
        seed: seed of the permutation generator, when no ``generator`` is given.
        generator: the permutation generator to draw from (its owner can save and restore
            its state, so a resumed fit draws the same orders as an uninterrupted one).
        rank, world_size: under DDP, this process takes every ``world_size``-th sample
            of the (shared) permutation starting at ``rank``: the shards are disjoint.
            Every rank must draw the same permutation (same ``seed`` or generator state).
        even_shards: give all ranks the same number of samples (training: every rank must
            take the same number of steps), leaving up to ``world_size - 1`` samples out of
            a pass. Off for evaluation: every sample is seen exactly once, and the shards
            differ by at most one sample (Lightning's ``UnrepeatedDistributedSampler`` does
            the same for a ``DataLoader``).
        order: without ``shuffle``, the fixed order to go through the samples in (sample
            indices; default: as stored).

    The tensors may live on any device (e.g. the GPU, so batches need no transfer); the
    permutation is drawn on the CPU, so a seed gives the same order on every device.
    """

    def __init__(
        self,
        tensors: tuple[torch.Tensor, ...],
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        generator: torch.Generator | None = None,
        rank: int = 0,
        world_size: int = 1,
        even_shards: bool = True,
        order: torch.Tensor | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank {rank} of {world_size}")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        if order is not None and len(order) != len(tensors[0]):
            raise ValueError(f"order has {len(order)} indices for {len(tensors[0])} samples")
        self.order = order
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.generator = generator if generator is not None else torch.Generator().manual_seed(seed)
        total = len(tensors[0])
        if world_size == 1:
            self.shard_size = total
        elif even_shards:
            self.shard_size = total // world_size
        else:  # ranks below total % world_size take one sample more
            self.shard_size = len(range(rank, total, world_size))

    def __len__(self) -> int:
        if self.drop_last:
            return self.shard_size // self.batch_size
        return math.ceil(self.shard_size / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        total = len(self.tensors[0])
        if self.shuffle:
            order = torch.randperm(total, generator=self.generator)
        else:
            order = self.order if self.order is not None else torch.arange(total)
        if self.world_size > 1:
            order = order[self.rank :: self.world_size][: self.shard_size]
        order = order.to(self.tensors[0].device)
        for i in range(len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield tuple(t[index] for t in self.tensors)
