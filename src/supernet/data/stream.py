"""Streaming image data: samples read, decoded and augmented in `DataLoader` worker processes.

For datasets too large to hold decoded in memory (ImageNet at 224x224 is ~150 GB). The batch order is the
in-memory path's (`BatchOrder`), and every sample's augmentation is drawn from its own seed, derived from
(seed, epoch, batch, rank, position in batch): a batch is the same whatever the number of workers, and a run
resumed at (epoch, batch) sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from supernet.core.errors import DatasetError
from supernet.data.augment import Augmentation
from supernet.data.loader import BatchOrder, derive_seed

_MODES = {1: "L", 3: "RGB"}


class StreamSource(Protocol):
    """What the streaming loader needs of a dataset: sized, indexable, PIL images out."""

    classes: tuple[str, ...]
    channels: int
    source: str

    def __len__(self) -> int: ...

    def load(self, index: int) -> tuple[Image.Image, int]: ...

    def subset(self, indices: torch.Tensor) -> StreamSource: ...


class ImageFiles:
    """Image files with labels (`root/<split>/<class>/<file>`), decoded only when a sample is loaded."""

    def __init__(
        self,
        paths: Sequence[str],
        labels: torch.Tensor,
        classes: tuple[str, ...],
        channels: int = 3,
        source: str = "<files>",
    ) -> None:
        if channels not in _MODES:
            raise DatasetError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}; pass 1 or 3")
        if len(paths) != len(labels):
            raise DatasetError(f"{source}: {len(paths)} files but {len(labels)} labels")
        self.paths = tuple(paths)
        self.labels = labels
        self.classes = classes
        self.channels = channels
        self.source = source

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> tuple[Image.Image, int]:
        path = self.paths[index]
        try:
            img = Image.open(path)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise DatasetError(f"cannot decode image {path}: {e}; delete or replace the file") from e
        return img, int(self.labels[index])

    def subset(self, indices: torch.Tensor) -> ImageFiles:
        idx = torch.as_tensor(indices, dtype=torch.int64).tolist()
        return ImageFiles([self.paths[i] for i in idx], self.labels[idx], self.classes, self.channels, self.source)


class TorchDataset:
    """Any map-style `torch.utils.data.Dataset` yielding (image, label), image a PIL image, a HxW / HxWxC
    uint8 array or a CxHxW uint8 tensor; `classes` names the labels."""

    def __init__(
        self,
        dataset: Any,
        classes: Sequence[str],
        channels: int = 3,
        source: str = "<dataset>",
        indices: Sequence[int] | None = None,
    ) -> None:
        if channels not in _MODES:
            raise DatasetError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}; pass 1 or 3")
        self.dataset = dataset
        self.classes = tuple(classes)
        self.channels = channels
        self.source = source
        self.indices = list(indices) if indices is not None else list(range(len(dataset)))

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def labels(self) -> torch.Tensor:
        """Every sample's label (reads every sample: for `data.val_per_class`)."""
        return torch.tensor([int(self.dataset[i][1]) for i in self.indices], dtype=torch.int64)

    def load(self, index: int) -> tuple[Image.Image, int]:
        image, label = self.dataset[self.indices[index]]
        return _to_pil(image, self.source), int(label)

    def subset(self, indices: torch.Tensor) -> TorchDataset:
        picked = [self.indices[i] for i in torch.as_tensor(indices, dtype=torch.int64).tolist()]
        return TorchDataset(self.dataset, self.classes, self.channels, self.source, picked)


def _to_pil(image: Any, source: str) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    array = image.numpy() if torch.is_tensor(image) else np.asarray(image)
    if torch.is_tensor(image) and array.ndim == 3:
        array = array.transpose(1, 2, 0)  # CHW tensor -> HWC
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise DatasetError(
            f"{source}: a sample is a {array.dtype} array of shape {array.shape}; expected a "
            "PIL image or uint8 HxW / HxWxC array (CxHxW tensor)"
        )
    return Image.fromarray(array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array)


@dataclass(frozen=True)
class SampleTransform:
    """One sample -> uint8 (C, resolution, resolution).

    Training (seed given): random-resized crop (area fraction in `scale`, aspect ratio in `ratio`, ten tries,
    then a centre crop; the torchvision/Inception recipe) and a horizontal flip with probability 1/2.
    Evaluation (seed None): resize the shorter side to resolution / eval_crop, centre crop (ImageNet: 256 ->
    224 is eval_crop 0.875). Both are one PIL resize of a crop box, so JPEGs decode at a reduced scale
    (`draft`) when the box is much larger than the output.
    """

    resolution: int
    channels: int = 3
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    eval_crop: float = 0.875
    horizontal_flip: bool = True

    def __post_init__(self) -> None:
        if self.resolution <= 0 or not 0 < self.scale[0] <= self.scale[1] <= 1 or not 0 < self.eval_crop <= 1:
            raise DatasetError(
                f"bad streaming transform resolution={self.resolution} scale={self.scale} "
                f"eval_crop={self.eval_crop}; need resolution > 0, 0 < scale_min <= 1, "
                "0 < eval_crop <= 1"
            )

    def __call__(self, image: Image.Image, seed: int | None) -> torch.Tensor:
        rng = random.Random(seed) if seed is not None else None
        width, height = image.size
        box = self._random_box(width, height, rng) if rng is not None else self._centre_box(width, height)
        box = _draft(image, box, self.resolution, _MODES[self.channels])
        r = self.resolution
        mode = _MODES[self.channels]
        out = (image if image.mode == mode else image.convert(mode)).resize((r, r), Image.BILINEAR, box=box)
        if rng is not None and self.horizontal_flip and rng.random() < 0.5:
            out = out.transpose(Image.FLIP_LEFT_RIGHT)
        array = np.asarray(out, dtype=np.uint8)
        array = array[:, :, None] if array.ndim == 2 else array
        return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()

    def _centre_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        side = min(width, height) * self.eval_crop
        left, top = (width - side) / 2, (height - side) / 2
        return left, top, left + side, top + side

    def _random_box(self, width: int, height: int, rng: random.Random) -> tuple[float, float, float, float]:
        area = width * height
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                left, top = rng.randint(0, width - w), rng.randint(0, height - h)
                return left, top, left + w, top + h
        aspect = width / height  # fallback: the largest centre crop within the ratio range
        w, h = (
            (width, round(width / self.ratio[0]))
            if aspect < self.ratio[0]
            else (round(height * self.ratio[1]), height)
            if aspect > self.ratio[1]
            else (width, height)
        )
        w, h = min(w, width), min(h, height)
        left, top = (width - w) // 2, (height - h) // 2
        return left, top, left + w, top + h


def _draft(
    image: Image.Image, box: tuple[float, float, float, float], resolution: int, mode: str
) -> tuple[float, float, float, float]:
    """Let a not yet decoded JPEG decode at the smallest power-of-two reduction (1/2, 1/4, 1/8) that keeps
    the crop box at least `resolution` pixels wide and high; returns the box in the reduced image's pixels.
    Other formats are unchanged."""
    width, height = image.size
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    wanted = (math.ceil(width * resolution / box_w), math.ceil(height * resolution / box_h))
    if wanted[0] >= width or wanted[1] >= height or image.format != "JPEG":
        return box
    image.draft(mode, wanted)
    sx, sy = image.size[0] / width, image.size[1] / height
    return box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy


class _Samples(Dataset):
    """The DataLoader's dataset: a key (index, seed or None) -> (uint8 image, label); runs in the workers."""

    def __init__(self, source: StreamSource, transform: SampleTransform) -> None:
        self.source = source
        self.transform = transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int | None]) -> tuple[torch.Tensor, int]:
        index, seed = key
        image, label = self.source.load(index)
        with image:
            return self.transform(image, seed), label


class _EpochBatches:
    """The DataLoader's batch sampler: batches start..len-1 of one epoch as lists of (index, seed) keys.
    It runs in the main process; `StreamingLoader.iter_epoch` sets `epoch` and `start` before iterating."""

    def __init__(self, order: BatchOrder, random_augment: bool) -> None:
        self.order = order
        self.random_augment = random_augment
        self.epoch = 0
        self.start = 0

    def __len__(self) -> int:
        return max(0, len(self.order) - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int | None]]]:
        perm = self.order.permutation(self.epoch)
        for batch in range(self.start, len(self.order)):
            indices = self.order.batch_indices(self.epoch, batch, perm).tolist()
            if not self.random_augment:
                yield [(i, None) for i in indices]
                continue
            base = self.order.batch_seed(self.epoch, batch)
            yield [(i, derive_seed(base, j)) for j, i in enumerate(indices)]


class StreamingLoader(BatchOrder):
    """Yields normalised (images_float, labels) batches decoded from disk by `workers` worker processes.

    Same interface and batch order as `BatchLoader` (`iter_epoch(epoch, start_batch)`, `len`, `set_epoch`);
    `train=True` draws the per-sample random-resized crop and flip, otherwise the evaluation resize and
    centre crop. `workers=0` decodes in the calling process. Batches leave the workers as uint8 and are
    normalised here (4x less inter-process traffic than float32) in two in-place passes.
    """

    def __init__(
        self,
        dataset: StreamSource,
        batch_size: int,
        transform: SampleTransform,
        normalise: Augmentation,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        train: bool = False,
        rank: int = 0,
        world_size: int = 1,
        workers: int = 0,
        prefetch_factor: int = 2,
    ) -> None:
        super().__init__(len(dataset), batch_size, shuffle, seed, drop_last, rank, world_size)
        if workers < 0:
            raise DatasetError(f"data.workers must be >= 0, got {workers}")
        self.dataset = dataset
        std = torch.tensor(normalise.std, dtype=torch.float32).view(1, -1, 1, 1)
        self._scale = 1.0 / (255.0 * std)  # (x / 255 - mean) / std as one multiply and one add, in place
        self._shift = -torch.tensor(normalise.mean, dtype=torch.float32).view(1, -1, 1, 1) / std
        # a BatchOrder of its own, not `self`: a reference cycle through the DataLoader makes the garbage
        # collector, not reference counting, end the workers, and they then take 5 s each to time out
        order = BatchOrder(len(dataset), batch_size, shuffle, seed, drop_last, rank, world_size)
        self._batches = _EpochBatches(order, random_augment=train)
        extra: dict[str, Any] = {"prefetch_factor": prefetch_factor, "persistent_workers": True} if workers else {}
        self._loader = DataLoader(
            _Samples(dataset, transform), batch_sampler=self._batches, num_workers=workers, **extra
        )

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_epoch(self.epoch)

    def iter_epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches start_batch..len-1 of `epoch`; skipped batches are neither read nor decoded."""
        self._batches.epoch, self._batches.start = epoch, start_batch
        if start_batch >= len(self):
            return
        for images, labels in self._loader:
            yield images.to(torch.float32).mul_(self._scale).add_(self._shift), labels


def sample_stats(
    dataset: StreamSource, transform: SampleTransform, samples: int = 1000, seed: int = 0
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units from a seeded sample of `samples` images (evaluation
    transform): decoding a whole large dataset only for its statistics would take as long as an epoch."""
    n = len(dataset)
    if n == 0:
        raise DatasetError(f"{dataset.source}: cannot compute channel statistics of an empty dataset; add samples")
    gen = torch.Generator().manual_seed(derive_seed(seed, -2))
    picked = torch.randperm(n, generator=gen)[:samples].tolist()
    total = torch.zeros(dataset.channels, dtype=torch.float64)
    total_sq = torch.zeros(dataset.channels, dtype=torch.float64)
    for i in picked:
        image, _ = dataset.load(i)
        with image:
            x = transform(image, None).to(torch.float64).div_(255.0)
        total += x.mean(dim=(1, 2))
        total_sq += x.square().mean(dim=(1, 2))
    mean = total / len(picked)
    std = (total_sq / len(picked) - mean.square()).clamp_min(0).sqrt()
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
