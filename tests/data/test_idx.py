import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from supernet.core.errors import DatasetError
from supernet.data import FASHION_MNIST_CLASSES, FASHION_MNIST_ROOT, load_fashion_mnist, read_idx, write_idx
from supernet.data.idx import load_mnist


def _write_fake(root: Path, n_train: int = 7, n_test: int = 3, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    sfx = ".gz" if gz else ""
    train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    write_idx(root / f"train-images-idx3-ubyte{sfx}", train)
    write_idx(root / f"train-labels-idx1-ubyte{sfx}", np.arange(n_train, dtype=np.uint8) % 10)
    write_idx(root / f"t10k-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8))
    write_idx(root / f"t10k-labels-idx1-ubyte{sfx}", np.full(n_test, 9, dtype=np.uint8))
    return train, np.arange(n_train) % 10


@pytest.mark.parametrize("name", ["a.gz", "a"])
def test_idx_round_trip(tmp_path, name):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / name, arr)
    out = read_idx(tmp_path / name)
    assert out.shape == (2, 3, 4)
    assert np.array_equal(out, arr)


@pytest.mark.parametrize("gz", [True, False])
def test_load_fake_fashion_mnist(tmp_path, gz):
    images, labels = _write_fake(tmp_path, gz=gz)
    train, test = load_fashion_mnist(tmp_path)
    assert train.images.shape == (7, 1, 28, 28) and test.images.shape == (3, 1, 28, 28)
    assert torch.equal(train.images[:, 0], torch.from_numpy(images))
    assert train.labels.tolist() == labels.tolist()
    assert train.classes == FASHION_MNIST_CLASSES
    assert load_mnist(tmp_path)[0].classes[3] == "3"


def test_bad_magic(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(p, "wb") as f:
        f.write(b"\x12\x34\x08\x03" + b"\x00" * 20)
    with pytest.raises(DatasetError, match="magic") as e:
        read_idx(p)
    assert str(p) in str(e.value)


def test_truncated(tmp_path):
    p = tmp_path / "x-idx3-ubyte.gz"
    write_idx(p, np.zeros((4, 5, 5), dtype=np.uint8))
    data = gzip.decompress(p.read_bytes())
    p.write_bytes(gzip.compress(data[:-7]))
    with pytest.raises(DatasetError, match="truncated") as e:
        read_idx(p)
    assert str(p) in str(e.value)


def test_corrupt_gzip(tmp_path):
    p = tmp_path / "y.gz"
    p.write_bytes(b"definitely not gzip")
    with pytest.raises(DatasetError) as e:
        read_idx(p)
    assert str(p) in str(e.value)


def test_missing_files_message(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_fashion_mnist(tmp_path)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path) in msg and "dataset-fashion-mnist" in msg
    assert "\n" not in msg


def test_label_count_mismatch(tmp_path):
    _write_fake(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, dtype=np.uint8))
    with pytest.raises(DatasetError, match="train-labels"):
        load_fashion_mnist(tmp_path)


def test_label_out_of_range(tmp_path):
    _write_fake(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(3, 10, dtype=np.uint8))
    with pytest.raises(DatasetError, match="t10k-labels"):
        load_fashion_mnist(tmp_path)


@pytest.mark.skipif(not FASHION_MNIST_ROOT.is_dir(), reason="Fashion-MNIST not installed")
def test_real_fashion_mnist():
    train, test = load_fashion_mnist()
    assert train.images.shape == (60000, 1, 28, 28)
    assert test.images.shape == (10000, 1, 28, 28)
    assert train.labels.bincount().tolist() == [6000] * 10
    assert test.labels.bincount().tolist() == [1000] * 10
