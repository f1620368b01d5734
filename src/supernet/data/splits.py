"""Seeded train/val splits, subsets and per-channel statistics."""

from __future__ import annotations

from typing import Any

import torch

from supernet.core.errors import DatasetError
from supernet.data.tensors import ImageDataset


def split_indices(n: int, val_size: int | float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomly carve a validation set out of n training samples with a fixed seed.

    The official test set is never used for this: it is kept for final reporting only.
    val_size is a count (int) or a fraction of n (float in [0, 1)). Both index tensors are sorted.
    """
    if isinstance(val_size, float):
        if not 0.0 <= val_size < 1.0:
            raise DatasetError(f"val_size fraction must be in [0, 1), got {val_size}; pass e.g. 0.1 or a count")
        n_val = int(round(n * val_size))
    else:
        n_val = int(val_size)
    if not 0 <= n_val < n:
        raise DatasetError(f"val_size {val_size} leaves no training data out of {n} samples; pass a val_size below {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def class_balanced_indices(labels: torch.Tensor, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A validation set of exactly `per_class` seeded random samples of every class (SPOS: 50 per
    ImageNet class); the rest is the training set. Both index tensors are sorted."""
    if per_class < 1:
        raise DatasetError(f"val_per_class must be >= 1, got {per_class}")
    gen = torch.Generator().manual_seed(seed)
    val = []
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten()
        if len(members) <= per_class:
            raise DatasetError(
                f"class {c} has {len(members)} training samples; data.val_per_class={per_class} "
                f"would leave none of them for training: pass a smaller val_per_class"
            )
        val.append(members[torch.randperm(len(members), generator=gen)[:per_class]])
    val_idx = torch.cat(val).sort().values
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[val_idx] = False
    return torch.nonzero(keep).flatten(), val_idx


def subset(ds: Any, idx: torch.Tensor) -> Any:
    """The samples of ds at idx (a copy for an ImageDataset; a streaming source's own `subset`)."""
    idx = torch.as_tensor(idx, dtype=torch.int64)
    if not isinstance(ds, ImageDataset):
        return ds.subset(idx)
    return ImageDataset(ds.images[idx], ds.labels[idx], ds.classes, ds.source)


def channel_stats(ds: ImageDataset, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units, accumulated in float64 chunks to bound memory."""
    if len(ds) == 0:
        raise DatasetError(f"{ds.source}: cannot compute channel statistics of an empty dataset; add samples")
    c = ds.channels
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for start in range(0, len(ds), chunk):
        x = ds.images[start : start + chunk].to(torch.float64).div_(255.0)
        total += x.sum(dim=(0, 2, 3))
        total_sq += x.square().sum(dim=(0, 2, 3))
    count = len(ds) * ds.images.shape[2] * ds.images.shape[3]
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(0).sqrt()
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
