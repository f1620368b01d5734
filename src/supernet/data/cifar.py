"""CIFAR-10 / CIFAR-100 loaders for the official python-pickle batch layout."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from supernet.core.errors import DatasetError
from supernet.data.tensors import ImageDataset

_LAYOUT = {
    10: (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        "batches.meta",
        b"label_names",
        b"labels",
    ),
    100: ("cifar-100-python", ["train"], ["test"], "meta", b"fine_label_names", b"fine_labels"),
}


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds only what CIFAR batches contain (dicts, lists, bytes, numpy arrays).

    Pickle is the official CIFAR format; a plain `pickle.load` would run any code a tampered file
    names, so every other global is refused.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _unpickle(path: Path) -> dict[bytes, Any]:
    """Load one CIFAR batch with the restricted unpickler."""
    try:
        with open(path, "rb") as f:
            obj = _CifarUnpickler(f, encoding="bytes").load()
    except Exception as e:  # pickle raises many exception types for corrupt input
        raise DatasetError(
            f"cannot read CIFAR batch {path}: {type(e).__name__}: {e}; re-download the python version of the dataset"
        ) from e
    if not isinstance(obj, dict):
        raise DatasetError(
            f"{path} is not a CIFAR batch (expected a dict, got {type(obj).__name__}); "
            "re-download the python version of the dataset"
        )
    return obj


def _resolve(root: Path, folder: str, num_classes: int) -> Path:
    for candidate in (root / folder, root):
        if (candidate / _LAYOUT[num_classes][3]).is_file():
            return candidate
    raise DatasetError(
        f"CIFAR-{num_classes} not found: looked for {folder}/{_LAYOUT[num_classes][3]} in {root}; "
        f"download and extract the python version of CIFAR-{num_classes} there or set --set data.root=FOLDER"
    )


def _field(batch: dict[bytes, Any], key: bytes, path: Path) -> Any:
    if key not in batch:
        raise DatasetError(
            f"{path} lacks key {key.decode()!r}; it is not a CIFAR batch of this variant (check CIFAR-10 vs CIFAR-100)"
        )
    return batch[key]


def _load_batches(folder: Path, names: list[str], label_key: bytes, classes: tuple[str, ...]) -> ImageDataset:
    images, labels = [], []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise DatasetError(f"CIFAR batch missing: {path}; re-extract the full dataset archive")
        batch = _unpickle(path)
        try:
            data = np.asarray(_field(batch, b"data", path), dtype=np.uint8).reshape(-1, 3, 32, 32)
            lab = np.asarray(_field(batch, label_key, path), dtype=np.int64).reshape(-1)
        except (ValueError, TypeError) as e:
            raise DatasetError(f"{path}: malformed data/labels ({e}); re-download the dataset") from e
        if len(lab) != len(data):
            raise DatasetError(f"{path}: {len(data)} images but {len(lab)} labels; re-download the dataset")
        images.append(data)
        labels.append(lab)
    return ImageDataset(
        images=torch.from_numpy(np.concatenate(images)),
        labels=torch.from_numpy(np.concatenate(labels)),
        classes=classes,
        source=str(folder / names[0]),
    )


def load_cifar(root: Path, num_classes: Literal[10, 100] = 10) -> tuple[ImageDataset, ImageDataset]:
    """Load (train, test) CIFAR; `root` holds cifar-10-batches-py / cifar-100-python or is that folder."""
    if num_classes not in _LAYOUT:
        raise DatasetError(f"CIFAR has 10 or 100 classes, got num_classes={num_classes}; use 10 or 100")
    folder_name, train_names, test_names, meta_name, names_key, label_key = _LAYOUT[num_classes]
    folder = _resolve(Path(root), folder_name, num_classes)
    meta_path = folder / meta_name
    raw = _field(_unpickle(meta_path), names_key, meta_path)
    try:
        classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in raw)
    except UnicodeDecodeError as e:
        raise DatasetError(f"{meta_path}: class names are not valid text ({e}); re-download the dataset") from e
    if len(classes) != num_classes:
        raise DatasetError(
            f"{meta_path} lists {len(classes)} classes, expected {num_classes}; "
            f"check that {folder} holds CIFAR-{num_classes}"
        )
    train = _load_batches(folder, train_names, label_key, classes)
    test = _load_batches(folder, test_names, label_key, classes)
    return train, test
