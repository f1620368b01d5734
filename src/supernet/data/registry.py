"""Dataset names -> train/val/test splits with normalisation statistics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from supernet.errors import DatasetError
from supernet.registry import Registry
from supernet.data.cifar import load_cifar
from supernet.data.folder import load_folder
from supernet.data.idx import FASHION_MNIST_ROOT, load_fashion_mnist, load_mnist
from supernet.data.loader import derive_seed
from supernet.data.splits import channel_stats, split_indices, subset
from supernet.data.tensors import DatasetSplits, ImageDataset

Pair = tuple[ImageDataset, ImageDataset]


def _need_root(name: str, root: Path | None) -> Path:
    if root is None:
        raise DatasetError(f"dataset {name!r} has no default location; pass --data-root")
    return root


def _no_options(name: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise DatasetError(f"dataset {name!r} takes no option(s) {', '.join(sorted(kwargs))}; remove them "
                           "(resolution, channels and max_per_class apply to 'folder' only)")


def _fashion(root: Path | None, **kw: Any) -> Pair:
    _no_options("fashion-mnist", kw)
    return load_fashion_mnist(root if root is not None else FASHION_MNIST_ROOT)


def _mnist(root: Path | None, **kw: Any) -> Pair:
    _no_options("mnist", kw)
    return load_mnist(_need_root("mnist", root))


def _cifar10(root: Path | None, **kw: Any) -> Pair:
    _no_options("cifar10", kw)
    return load_cifar(_need_root("cifar10", root), 10)


def _cifar100(root: Path | None, **kw: Any) -> Pair:
    _no_options("cifar100", kw)
    return load_cifar(_need_root("cifar100", root), 100)


def _folder(root: Path | None, resolution: int | None = None, channels: int = 3,
            max_per_class: int | None = None, **kw: Any) -> Pair:
    _no_options("folder", kw)
    return load_folder(_need_root("folder", root), resolution, channels, max_per_class)


DATASETS: Registry[Callable[..., Pair]] = Registry("dataset", DatasetError, hint="data.name")
"""`loader(root, **options) -> (train, test)`; register a new dataset here or from its own module."""
DATASETS.register("fashion-mnist", _fashion)
DATASETS.register("mnist", _mnist)
DATASETS.register("cifar10", _cifar10)
DATASETS.register("cifar100", _cifar100)
DATASETS.register("folder", _folder)


def list_datasets() -> tuple[str, ...]:
    return tuple(DATASETS.names())


def load_splits(name: str, root: str | Path | None = None, val_size: int | float = 0.1, seed: int = 0,
                train_limit: int | None = None, **kwargs: Any) -> DatasetSplits:
    """Load a dataset and carve a seeded validation split from its training set.

    train_limit keeps N randomly chosen (seeded) official training images before the val split, for
    fast demos/tests. The official test set is returned untouched for final reporting.
    mean/std come from the resulting train split.
    """
    train, test = DATASETS.get(name)(Path(root) if root is not None else None, **kwargs)
    if train_limit is not None:
        if train_limit <= 0:
            raise DatasetError(f"train_limit must be positive, got {train_limit}; pass a positive int or None")
        if train_limit < len(train):
            gen = torch.Generator().manual_seed(derive_seed(seed, -1))
            keep = torch.randperm(len(train), generator=gen)[:train_limit].sort().values
            train = subset(train, keep)
    train_idx, val_idx = split_indices(len(train), val_size, seed)
    train, val = subset(train, train_idx), subset(train, val_idx)
    mean, std = channel_stats(train)
    return DatasetSplits(train=train, val=val, test=test, mean=mean, std=std)
