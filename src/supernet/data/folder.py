"""ImageNet-style class-per-folder loader: root/{train,test}/<class>/<image>."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from supernet.core.errors import DatasetError
from supernet.data.stream import ImageFiles
from supernet.data.tensors import ImageDataset

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff"})
_MODES = {1: "L", 3: "RGB"}


def _class_dirs(split_dir: Path) -> list[str]:
    if not split_dir.is_dir():
        raise DatasetError(
            f"image folder not found: {split_dir} does not exist; "
            "expected root/train/<class>/*.jpg and root/test/<class>/*.jpg, fix --set data.root=..."
        )
    names = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DatasetError(f"no class folders in {split_dir}; put each class's images in {split_dir}/<class>/")
    return names


def _list_images(class_dir: Path, max_per_class: int | None) -> list[Path]:
    files = []
    for p in sorted(class_dir.iterdir()):
        if p.name.startswith(".") or p.is_dir():
            continue
        if p.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DatasetError(
                f"non-image file {p} in class folder; remove it or give it an image extension "
                f"({', '.join(sorted(IMAGE_EXTENSIONS))})"
            )
        files.append(p)
    if not files:
        raise DatasetError(f"empty class folder {class_dir}: no images found; add images or remove the folder")
    return files[:max_per_class] if max_per_class is not None else files


def _decode(path: Path, mode: str, resolution: int | None) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img = img.convert(mode)
            if resolution is not None and img.size != (resolution, resolution):
                img = img.resize((resolution, resolution), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetError(f"cannot decode image {path}: {e}; delete or replace the file") from e
    return arr[:, :, None] if arr.ndim == 2 else arr


def _load_split(
    split_dir: Path, classes: list[str], mode: str, resolution: int | None, max_per_class: int | None, workers: int
) -> ImageDataset:
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = _list_images(split_dir / name, max_per_class)
        files += found
        labels += [label] * len(found)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        arrays = list(pool.map(lambda p: _decode(p, mode, resolution), files))
    shape = arrays[0].shape
    for path, arr in zip(files, arrays):
        if arr.shape != shape:
            raise DatasetError(
                f"image {path} is {arr.shape[1]}x{arr.shape[0]} but {files[0]} is "
                f"{shape[1]}x{shape[0]}; pass a resolution to resize all images"
            )
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return ImageDataset(images, torch.tensor(labels, dtype=torch.int64), tuple(classes), str(split_dir))


def folder_classes(
    root: Path, channels: int = 3, resolution: int | None = None, max_per_class: int | None = None
) -> list[str]:
    """Check the folder options and the tree; the class names (sorted train folders, the same in test)."""
    if channels not in _MODES:
        raise DatasetError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}; pass 1 or 3")
    if resolution is not None and resolution <= 0:
        raise DatasetError(f"resolution must be a positive integer, got {resolution}; pass e.g. 32 or 224")
    if max_per_class is not None and max_per_class <= 0:
        raise DatasetError(f"max_per_class must be positive, got {max_per_class}; pass a positive int or None")
    root = Path(root)
    classes = _class_dirs(root / "train")
    test_classes = _class_dirs(root / "test")
    for name in classes:
        if name not in test_classes:
            raise DatasetError(
                f"class {name!r} has no folder {root / 'test' / name}; "
                "the test split must have the same class folders as train"
            )
    for name in test_classes:
        if name not in classes:
            raise DatasetError(
                f"test class folder {root / 'test' / name} has no train counterpart "
                f"{root / 'train' / name}; add it to train or remove it from test"
            )
    return classes


def load_folder(
    root: Path,
    resolution: int | None = None,
    channels: int = 3,
    max_per_class: int | None = None,
    workers: int | None = None,
) -> tuple[ImageDataset, ImageDataset]:
    """Load (train, test) from root/train/<class>/* and root/test/<class>/*; classes are sorted train folders.

    max_per_class keeps the first N files (sorted by name) of each class, in both splits.
    """
    classes = folder_classes(root, channels, resolution, max_per_class)
    root = Path(root)
    workers = workers or min(8, os.cpu_count() or 1)
    mode = _MODES[channels]
    train = _load_split(root / "train", classes, mode, resolution, max_per_class, workers)
    test = _load_split(root / "test", classes, mode, resolution, max_per_class, workers)
    return train, test


def list_folder(root: Path, channels: int = 3, max_per_class: int | None = None) -> tuple[ImageFiles, ImageFiles]:
    """(train, test) as lists of files, nothing decoded: the streaming path's `load_folder`."""
    root = Path(root)
    classes = folder_classes(root, channels, None, max_per_class)
    return tuple(
        _split_files(root / split, classes, max_per_class, channels)  # type: ignore[return-value]
        for split in ("train", "test")
    )


def _split_files(split_dir: Path, classes: list[str], max_per_class: int | None, channels: int) -> ImageFiles:
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = _list_images(split_dir / name, max_per_class)
        paths += [str(p) for p in found]
        labels += [label] * len(found)
    return ImageFiles(paths, torch.tensor(labels, dtype=torch.int64), tuple(classes), channels, str(split_dir))


def decoded_size(files: ImageFiles, resolution: int | None) -> int:
    """Bytes the in-memory path would hold for `files` (uint8 at `resolution`, else the first image's size)."""
    if not len(files):
        return 0
    if resolution is not None:
        height = width = resolution
    else:
        image, _ = files.load(0)
        with image:
            width, height = image.size
    return len(files) * files.channels * height * width
