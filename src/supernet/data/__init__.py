"""Datasets held in memory as uint8 tensors or streamed from disk, seeded splits, augmentation, resumable loaders."""

from supernet.data.augment import Augmentation, default_augmentation
from supernet.data.cifar import load_cifar
from supernet.data.folder import load_folder
from supernet.data.idx import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_ROOT,
    load_fashion_mnist,
    load_mnist,
    read_idx,
    write_idx,
)
from supernet.data.loader import BatchLoader, BatchOrder, derive_seed
from supernet.data.registry import DATASETS, STREAM_MODES, StreamPolicy, list_datasets, load_splits
from supernet.data.splits import channel_stats, class_balanced_indices, split_indices, subset
from supernet.data.stream import ImageFiles, SampleTransform, StreamingLoader, TorchDataset
from supernet.data.tensors import DatasetSplits, ImageDataset

__all__ = [
    "DATASETS",
    "Augmentation",
    "BatchLoader",
    "BatchOrder",
    "DatasetSplits",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_ROOT",
    "ImageDataset",
    "ImageFiles",
    "STREAM_MODES",
    "SampleTransform",
    "StreamPolicy",
    "StreamingLoader",
    "TorchDataset",
    "channel_stats",
    "default_augmentation",
    "derive_seed",
    "list_datasets",
    "load_cifar",
    "load_fashion_mnist",
    "load_folder",
    "load_mnist",
    "load_splits",
    "read_idx",
    "class_balanced_indices",
    "split_indices",
    "subset",
    "write_idx",
]
