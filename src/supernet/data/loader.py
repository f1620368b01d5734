"""Deterministic, resumable, optionally sharded mini-batch iteration over an in-memory ImageDataset."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import torch

from supernet.core.errors import ConfigError
from supernet.data.tensors import ImageDataset

Transform = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part, so (seed, epoch, batch) streams do not collide."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class BatchOrder:
    """Which dataset indices make up each batch; a pure function of (seed, epoch, batch index, rank).

    Every epoch draws its permutation from a fresh generator seeded with (seed, epoch). The in-memory
    `BatchLoader` and the streaming `supernet.data.stream.StreamingLoader` share this order, so that both
    paths visit the same samples in the same order.

    Sharding: batch_size is per rank. All ranks share the epoch permutation; global batch i is
    perm[i*B*W : (i+1)*B*W] and rank r takes its r-th chunk of B samples. With drop_last=False the final,
    short global batch is split into world_size near-equal chunks (torch.tensor_split), possibly empty
    when it has fewer than world_size samples; use drop_last=True for multi-rank training.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        if world_size <= 0 or not 0 <= rank < world_size:
            raise ConfigError(f"need 0 <= rank < world_size, got rank={rank} world_size={world_size}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.world_size

    def __len__(self) -> int:
        n, g = self.num_samples, self.global_batch_size
        return n // g if self.drop_last else -(-n // g)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def permutation(self, epoch: int) -> torch.Tensor:
        n = self.num_samples
        if not self.shuffle:
            return torch.arange(n)
        return torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(self.seed, epoch)))

    def batch_indices(self, epoch: int, batch: int, perm: torch.Tensor | None = None) -> torch.Tensor:
        """This rank's dataset indices for global batch `batch` of `epoch`."""
        perm = self.permutation(epoch) if perm is None else perm
        g = self.global_batch_size
        return torch.tensor_split(perm[batch * g : (batch + 1) * g], self.world_size)[self.rank]

    def batch_seed(self, epoch: int, batch: int) -> int:
        """The seed of this rank's augmentation draws for one batch."""
        return derive_seed(self.seed, epoch, batch, self.rank)


class BatchLoader(BatchOrder):
    """Yields (images_float, labels) batches of an in-memory ImageDataset, in `BatchOrder`.

    Every batch draws its augmentation from a fresh generator seeded with (seed, epoch, batch, rank), so a
    run resumed at (epoch, start_batch) sees exactly the batches an uninterrupted run would have seen.
    Without a transform, images are returned as float32 in [0, 1].
    """

    def __init__(
        self,
        dataset: ImageDataset,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        transform: Transform | None = None,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(len(dataset), batch_size, shuffle, seed, drop_last, rank, world_size)
        self.dataset = dataset
        self.transform = transform
        self.device = torch.device(device) if device is not None else None

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_epoch(self.epoch)

    def iter_epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches start_batch..len-1 of `epoch`; skipped batches are not computed."""
        perm = self.permutation(epoch)
        for i in range(start_batch, len(self)):
            idx = self.batch_indices(epoch, i, perm)
            images, labels = self.dataset.images[idx], self.dataset.labels[idx]
            if self.device is not None:
                images = images.to(self.device, non_blocking=True)
                labels = labels.to(self.device, non_blocking=True)
            if self.transform is None:
                yield images.to(torch.float32) / 255.0, labels
            else:
                gen = torch.Generator().manual_seed(self.batch_seed(epoch, i))
                yield self.transform(images, gen), labels
