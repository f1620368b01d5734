"""In-memory image datasets: uint8 image tensors plus int64 labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from supernet.core.errors import DatasetError


@dataclass(frozen=True)
class ImageDataset:
    """Images (uint8, N x C x H x W), labels (int64, N) and class names; `source` names the origin in errors."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    source: str = "<memory>"

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DatasetError(
                f"{self.source}: images must be a uint8 N x C x H x W tensor, got {self.images.dtype} "
                f"with shape {tuple(self.images.shape)}; convert the images to uint8 NCHW"
            )
        if self.labels.dtype != torch.int64 or self.labels.dim() != 1:
            raise DatasetError(
                f"{self.source}: labels must be a 1-D int64 tensor, got {self.labels.dtype} "
                f"with shape {tuple(self.labels.shape)}; convert the labels to int64"
            )
        if self.labels.numel() != self.images.shape[0]:
            raise DatasetError(
                f"{self.source}: {self.images.shape[0]} images but {self.labels.numel()} labels; "
                "the image and label files must describe the same samples"
            )
        if not self.classes:
            raise DatasetError(f"{self.source}: dataset has no classes; provide at least one class name")
        if self.labels.numel() and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)):
            raise DatasetError(
                f"{self.source}: labels span {int(self.labels.min())}..{int(self.labels.max())} but only "
                f"{len(self.classes)} classes exist (valid 0..{len(self.classes) - 1}); check the label file"
            )

    def __len__(self) -> int:
        return int(self.labels.numel())

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def resolution(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])


@dataclass(frozen=True)
class DatasetSplits:
    """Train/val/test datasets; mean/std are per-channel in [0, 1] units computed from `train`.

    The splits are in-memory `ImageDataset`s, or streaming sources (`supernet.data.stream`) that are
    decoded per batch and cropped to `resolution`.
    """

    train: Any
    val: Any
    test: Any
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resolution: int | None = None  # streaming: the crop size; in memory: the images' own

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)

    @property
    def streaming(self) -> bool:
        return not isinstance(self.train, ImageDataset)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the batches the model sees."""
        if isinstance(self.train, ImageDataset):
            return (self.train.channels, *self.train.resolution)
        assert self.resolution is not None
        return self.train.channels, self.resolution, self.resolution
