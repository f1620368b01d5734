import numpy as np
import pytest
import torch

from supernet.core.errors import DatasetError
from supernet.data import ImageDataset, channel_stats, list_datasets, load_splits, split_indices, subset, write_idx


def _ds(n: int = 10, c: int = 3) -> ImageDataset:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, c, 2, 2).contiguous()
    return ImageDataset(images, torch.arange(n) % 4, ("a", "b", "c", "d"), "fake")


def test_split_deterministic_and_disjoint():
    tr, va = split_indices(100, 0.2, seed=3)
    tr2, va2 = split_indices(100, 0.2, seed=3)
    assert torch.equal(tr, tr2) and torch.equal(va, va2)
    assert len(va) == 20 and len(tr) == 80
    assert sorted(torch.cat([tr, va]).tolist()) == list(range(100))
    _, va3 = split_indices(100, 20, seed=4)
    assert not torch.equal(va, va3)


def test_split_bad_size():
    with pytest.raises(DatasetError):
        split_indices(10, 10, 0)
    with pytest.raises(DatasetError):
        split_indices(10, 1.5, 0)


def test_subset_and_stats():
    ds = _ds()
    sub = subset(ds, torch.tensor([7, 2]))
    assert sub.images[:, 0, 0, 0].tolist() == [7, 2] and sub.labels.tolist() == [3, 2]
    mean, std = channel_stats(ds)
    x = ds.images.double() / 255
    assert mean == pytest.approx([x[:, 0].mean().item()] * 3)
    assert std == pytest.approx([x[:, 0].std(unbiased=False).item()] * 3)


def test_image_dataset_validation():
    with pytest.raises(DatasetError, match="fake"):
        ImageDataset(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 4]), ("a", "b"), "fake")
    with pytest.raises(DatasetError):
        ImageDataset(torch.zeros(2, 1, 2, 2), torch.tensor([0, 1]), ("a", "b"))
    with pytest.raises(DatasetError):
        ImageDataset(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([0]), ("a", "b"))


def test_unknown_dataset_lists_names():
    with pytest.raises(DatasetError) as e:
        load_splits("imagenet-z", None, 0.1, 0)
    for name in ("fashion-mnist", "cifar10", "cifar100", "folder"):
        assert name in str(e.value) and name in list_datasets()


def test_train_limit_and_folder_needs_root(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (50, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(50, dtype=np.uint8) % 10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((4, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    a = load_splits("fashion-mnist", tmp_path, val_size=0.2, seed=5, train_limit=20)
    b = load_splits("fashion-mnist", tmp_path, val_size=0.2, seed=5, train_limit=20)
    assert len(a.train) == 16 and len(a.val) == 4 and len(a.test) == 4
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.val.labels, b.val.labels)
    assert a.mean == pytest.approx(channel_stats(a.train)[0])
    with pytest.raises(DatasetError, match=r"--set data\.root="):
        load_splits("folder", None, 0.1, 0)
    with pytest.raises(DatasetError, match="resolution"):
        load_splits("fashion-mnist", tmp_path, 0.1, 0, resolution=32)


def test_class_balanced_validation_split_holds_out_exactly_n_per_class():
    from supernet.data import class_balanced_indices

    labels = torch.tensor([0] * 30 + [1] * 7 + [2] * 50)[torch.randperm(87, generator=torch.Generator().manual_seed(1))]
    tr, va = class_balanced_indices(labels, 5, seed=3)
    tr2, va2 = class_balanced_indices(labels, 5, seed=3)
    assert torch.equal(tr, tr2) and torch.equal(va, va2)
    assert torch.bincount(labels[va]).tolist() == [5, 5, 5]
    assert sorted(torch.cat([tr, va]).tolist()) == list(range(87))
    assert not torch.equal(va, class_balanced_indices(labels, 5, seed=4)[1])
    with pytest.raises(DatasetError, match="class 1 has 7 training samples; data.val_per_class=7"):
        class_balanced_indices(labels, 7, seed=0)


@pytest.mark.skipif(
    not __import__("pathlib").Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="Fashion-MNIST not installed"
)
def test_config_val_per_class_gives_a_class_balanced_val_split():
    from supernet.config.schema import load_config
    from supernet.runs.build import load_data

    splits = load_data(load_config(None, ["data.train_limit=600", "data.val_per_class=4"]))
    assert torch.bincount(splits.val.labels, minlength=10).tolist() == [4] * 10
    assert len(splits.train) == 560
