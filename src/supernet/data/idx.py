"""IDX file reader (the MNIST / Fashion-MNIST format) and the Fashion-MNIST loader."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from supernet.core.errors import DatasetError
from supernet.data.tensors import ImageDataset

FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES = tuple(str(i) for i in range(10))
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DatasetError(f"cannot read IDX file {path}: {e}; re-download or reinstall the dataset") from e


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzip-compressed if it ends in .gz), checking magic number, dims and length."""
    path = Path(path)
    data = _read_bytes(path)
    fix = "re-download or reinstall the dataset"
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES or data[3] == 0:
        raise DatasetError(f"{path} is not an IDX file (bad magic number {data[:4].hex()}); {fix}")
    dtype, ndim = np.dtype(_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path} is truncated: header needs {header} bytes, file has {len(data)}; {fix}")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DatasetError(
            f"{path} has {len(data)} bytes but its header {dims} implies {expected}; "
            f"file is truncated or corrupt; {fix}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzip if the name ends in .gz); used by tests and tooling."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload += array.tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)


def _hint(name: str) -> str:
    if name == "Fashion-MNIST":
        return "install Debian package dataset-fashion-mnist or set --set data.root=FOLDER"
    return "set --set data.root=FOLDER (the folder with the IDX files)"


def _find(root: Path, stem: str, name: str) -> Path:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{name} not found: looked for {stem}.gz (or {stem}) in {root}; {_hint(name)}")


def _load_split(root: Path, split: str, classes: tuple[str, ...], name: str) -> ImageDataset:
    img_path, lbl_path = (_find(root, stem, name) for stem in _FILES[split])
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(
            f"{img_path}: expected uint8 N x H x W images, got {images.dtype} {images.shape}; "
            "check that image and label files are not swapped"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(
            f"{lbl_path}: expected {len(images)} labels to match {img_path}, got shape "
            f"{labels.shape}; use label and image files from the same release"
        )
    return ImageDataset(
        images=torch.from_numpy(images.copy()).unsqueeze(1),
        labels=torch.from_numpy(labels.astype(np.int64)),
        classes=classes,
        source=str(lbl_path),
    )


def load_fashion_mnist(
    root: Path | None = None, classes: tuple[str, ...] = FASHION_MNIST_CLASSES, name: str = "Fashion-MNIST"
) -> tuple[ImageDataset, ImageDataset]:
    """Load (train, test) from the standard IDX files in `root`; pass MNIST_CLASSES to load MNIST."""
    root = Path(root) if root is not None else FASHION_MNIST_ROOT
    if not root.is_dir():
        raise DatasetError(f"{name} not found: directory {root} does not exist; {_hint(name)}")
    return _load_split(root, "train", classes, name), _load_split(root, "test", classes, name)


def load_mnist(root: Path) -> tuple[ImageDataset, ImageDataset]:
    """Load (train, test) MNIST digits; same file names and format as Fashion-MNIST."""
    return load_fashion_mnist(root, MNIST_CLASSES, "MNIST")
