"""Dataset names -> train/val/test splits with normalisation statistics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from supernet.core.errors import DatasetError
from supernet.core.registry import Registry
from supernet.data.cifar import load_cifar
from supernet.data.folder import decoded_size, list_folder, load_folder
from supernet.data.idx import FASHION_MNIST_ROOT, load_fashion_mnist, load_mnist
from supernet.data.loader import derive_seed
from supernet.data.splits import channel_stats, class_balanced_indices, split_indices, subset
from supernet.data.stream import SampleTransform, StreamSource, sample_stats
from supernet.data.tensors import DatasetSplits, ImageDataset

Split = ImageDataset | StreamSource
Pair = tuple[Split, Split]
DatasetLoader = Callable[..., Pair]  # (root, **data.options) -> (train, test)
STREAM_MODES = ("auto", "memory", "disk")


@dataclass(frozen=True)
class StreamPolicy:
    """`data.stream`: memory (decode everything up front), disk (decode per batch in DataLoader workers) or
    auto (disk when the decoded training set would exceed `memory_limit` bytes)."""

    mode: str = "memory"
    memory_limit: int = 2048 << 20

    def __post_init__(self) -> None:
        if self.mode not in STREAM_MODES:
            raise DatasetError(f"data.stream must be one of {', '.join(STREAM_MODES)}, got {self.mode!r}")
        if self.memory_limit <= 0:
            raise DatasetError(f"data.memory_limit_mb must be positive, got {self.memory_limit >> 20}")


def _need_root(name: str, root: Path | None) -> Path:
    if root is None:
        raise DatasetError(f"dataset {name!r} has no default location; set --set data.root=FOLDER")
    return root


def _no_options(name: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise DatasetError(
            f"dataset {name!r} takes no option(s) {', '.join(sorted(kwargs))}; remove them "
            "(resolution, channels and max_per_class apply to 'folder' only)"
        )


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


def _folder(
    root: Path | None,
    resolution: int | None = None,
    channels: int = 3,
    max_per_class: int | None = None,
    policy: StreamPolicy = StreamPolicy(),
    **kw: Any,
) -> Pair:
    _no_options("folder", kw)
    root = _need_root("folder", root)
    if policy.mode == "memory":
        return load_folder(root, resolution, channels, max_per_class)
    train, test = list_folder(root, channels, max_per_class)
    if policy.mode == "auto" and decoded_size(train, resolution) <= policy.memory_limit:
        return load_folder(root, resolution, channels, max_per_class)
    if resolution is None:
        raise DatasetError("streaming an image folder needs data.resolution (e.g. 224): batches are cropped to it")
    return train, test


DATASETS: Registry[DatasetLoader] = Registry("dataset", DatasetError, hint="data.name")
"""`loader(root, **data.options) -> (train, test)`, each an in-memory `ImageDataset` or a streaming source
(`ImageFiles`, or any map-style torch Dataset wrapped in `TorchDataset`); register a new dataset here or
from its own module (e.g. a file given to --import). `folder` also receives the `data.stream` policy."""
DATASETS.register("fashion-mnist", _fashion)
DATASETS.register("mnist", _mnist)
DATASETS.register("cifar10", _cifar10)
DATASETS.register("cifar100", _cifar100)
DATASETS.register("folder", _folder)


def list_datasets() -> tuple[str, ...]:
    return tuple(DATASETS.names())


def load_splits(
    name: str,
    root: str | Path | None = None,
    val_size: int | float = 0.1,
    seed: int = 0,
    train_limit: int | None = None,
    policy: StreamPolicy = StreamPolicy(),
    stats_transform: SampleTransform | None = None,
    val_per_class: int | None = None,
    **kwargs: Any,
) -> DatasetSplits:
    """Load a dataset and carve a seeded validation split from its training set.

    train_limit keeps N randomly chosen (seeded) official training images before the val split, for
    fast demos/tests. The official test set is returned untouched for final reporting.
    mean/std come from the resulting train split (for a streaming one, from a seeded sample of its images
    through `stats_transform`, the evaluation transform).
    `val_per_class` (in place of val_size) holds out exactly that many images of every class
    (class-balanced, as SPOS's 50 per class).
    """
    train, test = _load_pair(name, Path(root) if root is not None else None, policy, kwargs)
    if train_limit is not None:
        if train_limit <= 0:
            raise DatasetError(f"train_limit must be positive, got {train_limit}; pass a positive int or None")
        if train_limit < len(train):
            gen = torch.Generator().manual_seed(derive_seed(seed, -1))
            keep = torch.randperm(len(train), generator=gen)[:train_limit].sort().values
            train = subset(train, keep)
    if val_per_class is not None:
        train_idx, val_idx = class_balanced_indices(train.labels, val_per_class, seed)
    else:
        train_idx, val_idx = split_indices(len(train), val_size, seed)
    train, val = subset(train, train_idx), subset(train, val_idx)
    if isinstance(train, ImageDataset):
        mean, std = channel_stats(train)
        return DatasetSplits(train=train, val=val, test=test, mean=mean, std=std)
    if stats_transform is None:
        raise DatasetError(f"dataset {name!r} streams from disk: set data.resolution (the crop size)")
    mean, std = sample_stats(train, replace(stats_transform, channels=train.channels), seed=seed)
    return DatasetSplits(train=train, val=val, test=test, mean=mean, std=std, resolution=stats_transform.resolution)


def _load_pair(name: str, root: Path | None, policy: StreamPolicy, options: dict[str, Any]) -> Pair:
    loader = DATASETS.get(name)
    if name == "folder":
        return _folder(root, policy=policy, **options)
    pair = loader(root, **options)
    if not isinstance(pair, tuple) or len(pair) != 2:
        raise DatasetError(f"dataset {name!r}: its loader returned {type(pair).__name__}; expected (train, test)")
    in_memory = all(isinstance(split, ImageDataset) for split in pair)
    if policy.mode == "disk" and in_memory:
        raise DatasetError(
            f"dataset {name!r} is held in memory; data.stream=disk needs 'folder' or a dataset "
            "whose loader returns streaming sources (use data.stream=auto or memory)"
        )
    if policy.mode == "memory" and not in_memory:
        raise DatasetError(f"dataset {name!r} streams from disk; set data.stream to disk or auto")
    return pair
