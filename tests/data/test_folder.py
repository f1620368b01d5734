from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from supernet.core.errors import DatasetError
from supernet.data import load_folder, load_splits
from tests.conftest import shared_path

CIFAR_JPG = shared_path("data", "cifar10-jpg")


def _img(path: Path, size=(8, 8), value: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)


def make_tree(root: Path, classes=("a", "b"), per_class: int = 3) -> None:
    for split in ("train", "test"):
        for ci, c in enumerate(classes):
            for i in range(per_class):
                _img(root / split / c / f"{i:02d}.png", value=10 * ci + i)


def test_fake_tree(tmp_path):
    make_tree(tmp_path)
    train, test = load_folder(tmp_path)
    assert train.classes == ("a", "b")
    assert train.images.shape == (6, 3, 8, 8) and test.images.shape == (6, 3, 8, 8)
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert train.images[4, :, 0, 0].tolist() == [11, 11, 11]  # sorted file order within class


def test_grayscale_resize_and_limit(tmp_path):
    make_tree(tmp_path)
    train, _ = load_folder(tmp_path, resolution=5, channels=1, max_per_class=2)
    assert train.images.shape == (4, 1, 5, 5)
    assert train.images[1, 0, 2, 2].item() == 1 and train.images[3, 0, 2, 2].item() == 11


def test_missing_test_class(tmp_path):
    make_tree(tmp_path)
    for p in (tmp_path / "test" / "b").iterdir():
        p.unlink()
    (tmp_path / "test" / "b").rmdir()
    with pytest.raises(DatasetError, match="'b'") as e:
        load_folder(tmp_path)
    assert str(tmp_path / "test" / "b") in str(e.value)


def test_empty_class_folder(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "train" / "c").mkdir()
    (tmp_path / "test" / "c").mkdir()
    with pytest.raises(DatasetError, match="empty") as e:
        load_folder(tmp_path)
    assert str(tmp_path / "train" / "c") in str(e.value)


def test_non_image_extension(tmp_path):
    make_tree(tmp_path)
    bad = tmp_path / "train" / "a" / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(DatasetError) as e:
        load_folder(tmp_path)
    assert str(bad) in str(e.value)


def test_undecodable_image(tmp_path):
    make_tree(tmp_path)
    bad = tmp_path / "test" / "b" / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(DatasetError, match="decode") as e:
        load_folder(tmp_path)
    assert str(bad) in str(e.value)


def test_size_mismatch_without_resolution(tmp_path):
    make_tree(tmp_path)
    odd = tmp_path / "train" / "b" / "zz.png"
    _img(odd, size=(9, 8))
    with pytest.raises(DatasetError) as e:
        load_folder(tmp_path)
    assert str(odd) in str(e.value)
    train, _ = load_folder(tmp_path, resolution=8)  # resizing fixes it
    assert train.images.shape == (7, 3, 8, 8)


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match=str(tmp_path / "nope" / "train")):
        load_folder(tmp_path / "nope")


@pytest.mark.skipif(not CIFAR_JPG.is_dir(), reason="cifar10-jpg copy not present")
def test_real_cifar10_jpg():
    train, test = load_folder(CIFAR_JPG, max_per_class=3)
    assert len(train.classes) == 10 and train.classes[0] == "airplane"
    assert train.images.shape == (30, 3, 32, 32) and test.images.shape == (30, 3, 32, 32)
    assert train.labels.bincount().tolist() == [3] * 10
    assert train.images.float().std() > 10  # real pixel content, not blanks
    s = load_splits("folder", CIFAR_JPG, val_size=0.2, seed=0, max_per_class=5, resolution=16)
    assert len(s.train) == 40 and len(s.val) == 10 and s.train.images.shape[-1] == 16
