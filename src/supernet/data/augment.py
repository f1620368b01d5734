"""Batched tensor-op augmentation: uint8 (B, C, H, W) -> normalised float32."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from supernet.core.errors import DatasetError


@dataclass(frozen=True)
class Augmentation:
    """Random crop with zero padding, horizontal flip (p=0.5 per sample), then per-channel normalisation.

    Called with generator=None it only normalises (the eval transform).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int = 0
    horizontal_flip: bool = False

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or any(s <= 0 for s in self.std) or self.crop_padding < 0:
            raise DatasetError(
                f"bad augmentation settings mean={self.mean} std={self.std} "
                f"crop_padding={self.crop_padding}; mean/std need one positive entry per channel"
            )

    @property
    def is_random(self) -> bool:
        return self.crop_padding > 0 or self.horizontal_flip

    def __call__(self, batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if batch.dtype != torch.uint8 or batch.dim() != 4 or batch.shape[1] != len(self.mean):
            raise DatasetError(
                f"augmentation expects a uint8 (B, {len(self.mean)}, H, W) batch, got "
                f"{batch.dtype} {tuple(batch.shape)}; check the dataset's channel count"
            )
        if generator is not None and self.is_random and batch.shape[0] > 0:
            batch = self._crop_flip(batch, generator)
        return self.normalise(batch)

    def normalise(self, batch: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=torch.float32, device=batch.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=batch.device).view(1, -1, 1, 1)
        return (batch.to(torch.float32) / 255.0 - mean) / std

    def _crop_flip(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One gather does both: per-sample row/column index grids, columns reversed for flipped samples."""
        b, c, h, w = batch.shape
        p = self.crop_padding
        # Random draws happen on CPU so the same generator gives the same result for any batch device.
        oy = torch.randint(0, 2 * p + 1, (b,), generator=generator)
        ox = torch.randint(0, 2 * p + 1, (b,), generator=generator)
        if self.horizontal_flip:
            flip = torch.rand(b, generator=generator) < 0.5
        else:
            flip = torch.zeros(b, dtype=torch.bool)
        rows = oy[:, None] + torch.arange(h)
        cols = torch.where(flip[:, None], torch.arange(w - 1, -1, -1), torch.arange(w)) + ox[:, None]
        padded = F.pad(batch, (p, p, p, p)) if p else batch
        dev = batch.device
        bi = torch.arange(b, device=dev).view(b, 1, 1, 1)
        ci = torch.arange(c, device=dev).view(1, c, 1, 1)
        return padded[bi, ci, rows.to(dev).view(b, 1, h, 1), cols.to(dev).view(b, 1, 1, w)]


_CROP_FLIP = {
    "fashion-mnist": (2, True),
    "mnist": (2, False),  # flipped digits are different digits
    "cifar10": (4, True),
    "cifar100": (4, True),
}


def augmentation_family(name: str) -> str:
    """The name whose default augmentation a dataset gets: its own, or "folder" for any other
    (e.g. registered with --import)."""
    return name if name in _CROP_FLIP else "folder"


def default_augmentation(
    name: str, mean: tuple[float, ...], std: tuple[float, ...], train: bool, resolution: int | None = None
) -> Augmentation:
    """Standard per-dataset augmentation; eval (train=False) is normalisation only.

    For "folder" datasets, padded crops are used only for small images (resolution <= 64).
    """
    if not train:
        return Augmentation(mean, std)
    if name == "folder":
        pad = 4 if resolution is not None and resolution <= 64 else 0
        return Augmentation(mean, std, crop_padding=pad, horizontal_flip=True)
    if name not in _CROP_FLIP:
        raise DatasetError(
            f"no default augmentation for dataset {name!r}; known: {', '.join(sorted([*_CROP_FLIP, 'folder']))}"
        )
    pad, flip = _CROP_FLIP[name]
    return Augmentation(mean, std, crop_padding=pad, horizontal_flip=flip)
