import pytest
import torch

from supernet.data import Augmentation, BatchLoader, ImageDataset


def _ds(n: int = 50) -> ImageDataset:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 4, 4).contiguous()
    return ImageDataset(images, torch.arange(n) % 5, tuple("abcde"), "fake")


AUG = Augmentation((0.0,), (1.0,), crop_padding=1, horizontal_flip=True)


def _collect(loader, epoch, start=0):
    return list(loader.iter_epoch(epoch, start))


def test_len_and_coverage():
    ds = _ds(50)
    loader = BatchLoader(ds, 8, shuffle=True, seed=0)
    assert len(loader) == 7 and len(BatchLoader(ds, 8, drop_last=True)) == 6
    labels_seen = torch.cat([y for _, y in loader])
    assert labels_seen.numel() == 50 and labels_seen.bincount().tolist() == [10] * 5


def test_same_seed_epoch_identical_and_epochs_differ():
    a = BatchLoader(_ds(), 8, shuffle=True, seed=3, transform=AUG)
    b = BatchLoader(_ds(), 8, shuffle=True, seed=3, transform=AUG)
    a.set_epoch(2)
    b.set_epoch(2)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    first_e2 = next(iter(a))[0]
    a.set_epoch(3)
    assert not torch.equal(next(iter(a))[0], first_e2)


def test_start_batch_equals_tail():
    loader = BatchLoader(_ds(), 8, shuffle=True, seed=1, transform=AUG)
    full = _collect(loader, 4)
    tail = _collect(loader, 4, start=3)
    assert len(tail) == len(full) - 3
    for (xf, yf), (xt, yt) in zip(full[3:], tail, strict=True):
        assert torch.equal(xf, xt) and torch.equal(yf, yt)


def test_no_shuffle_order_and_unit_range():
    x, y = next(iter(BatchLoader(_ds(), 4)))
    assert y.tolist() == [0, 1, 2, 3] and x.dtype == torch.float32
    assert x[:, 0, 0, 0].tolist() == pytest.approx([i / 255 for i in range(4)])


def test_two_rank_sharding_disjoint_cover():
    ds = _ds(48)
    r0 = BatchLoader(ds, 6, shuffle=True, seed=9, rank=0, world_size=2)
    r1 = BatchLoader(ds, 6, shuffle=True, seed=9, rank=1, world_size=2)
    single = BatchLoader(ds, 12, shuffle=True, seed=9)
    assert len(r0) == len(r1) == len(single) == 4
    for i in range(len(single)):
        i0, i1 = r0.batch_indices(0, i), r1.batch_indices(0, i)
        assert len(i0) == len(i1) == 6
        assert not set(i0.tolist()) & set(i1.tolist())
        assert torch.equal(torch.cat([i0, i1]), single.batch_indices(0, i))
    all_idx = torch.cat([r.batch_indices(0, i) for r in (r0, r1) for i in range(4)])
    assert sorted(all_idx.tolist()) == list(range(48))
    (x0, y0), (x1, y1) = next(iter(r0)), next(iter(r1))
    assert x0.shape == x1.shape == (6, 1, 4, 4)
    assert torch.equal(y0, ds.labels[r0.batch_indices(0, 0)]) and torch.equal(y1, ds.labels[r1.batch_indices(0, 0)])
