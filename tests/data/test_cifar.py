import pickle
from pathlib import Path

import numpy as np
import pytest

from supernet.core.errors import DatasetError
from supernet.data import load_cifar, load_splits

NAMES10 = [f"c{i}" for i in range(10)]


def _dump(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def _batch(n: int, label_key: bytes, n_classes: int, start: int = 0) -> dict:
    data = (np.arange(n * 3072) % 251).astype(np.uint8).reshape(n, 3072)
    data[:, 0] = np.arange(start, start + n)
    return {b"data": data, label_key: [(start + i) % n_classes for i in range(n)]}


def make_cifar10(root: Path, per_batch: int = 4) -> Path:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for i in range(1, 6):
        _dump(d / f"data_batch_{i}", _batch(per_batch, b"labels", 10, start=(i - 1) * per_batch))
    _dump(d / "test_batch", _batch(3, b"labels", 10))
    _dump(d / "batches.meta", {b"label_names": [n.encode() for n in NAMES10]})
    return d


def test_cifar10_layout(tmp_path):
    d = make_cifar10(tmp_path)
    for root in (tmp_path, d):
        train, test = load_cifar(root, 10)
        assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (3, 3, 32, 32)
        assert train.classes == tuple(NAMES10)
        assert train.images[:, 0, 0, 0].tolist() == list(range(20))  # batches concatenated in order
        assert train.labels.tolist() == [i % 10 for i in range(20)]


def test_cifar100_fine_labels(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    for split, n in (("train", 6), ("test", 2)):
        b = _batch(n, b"fine_labels", 100)
        b[b"coarse_labels"] = [0] * n
        b[b"fine_labels"] = [99 - i for i in range(n)]
        _dump(d / split, b)
    _dump(d / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)]})
    train, test = load_cifar(tmp_path, 100)
    assert train.labels.tolist() == [99, 98, 97, 96, 95, 94]
    assert len(train.classes) == 100 and test.images.shape == (2, 3, 32, 32)


def test_cifar_missing(tmp_path):
    with pytest.raises(DatasetError, match="cifar-10-batches-py") as e:
        load_cifar(tmp_path, 10)
    assert str(tmp_path) in str(e.value)


def test_cifar_corrupt_batch(tmp_path):
    d = make_cifar10(tmp_path)
    (d / "data_batch_3").write_bytes(b"\x80\x04garbage")
    with pytest.raises(DatasetError) as e:
        load_cifar(tmp_path, 10)
    assert str(d / "data_batch_3") in str(e.value)


def test_cifar_missing_batch(tmp_path):
    d = make_cifar10(tmp_path)
    (d / "data_batch_5").unlink()
    with pytest.raises(DatasetError, match="data_batch_5"):
        load_cifar(tmp_path, 10)


def test_cifar_wrong_shape(tmp_path):
    d = make_cifar10(tmp_path)
    _dump(d / "test_batch", {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(DatasetError, match="test_batch"):
        load_cifar(tmp_path, 10)


def test_load_splits_cifar(tmp_path):
    make_cifar10(tmp_path)
    s = load_splits("cifar10", tmp_path, val_size=5, seed=1)
    assert len(s.train) == 15 and len(s.val) == 5 and len(s.test) == 3
    assert len(s.mean) == 3 and all(0 <= m <= 1 for m in s.mean)
