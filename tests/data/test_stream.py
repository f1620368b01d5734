"""The streaming loader: the in-memory path's batch order, per-sample seeded augmentation, any worker count."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from supernet.core.errors import DatasetError
from supernet.data import (
    Augmentation,
    BatchLoader,
    ImageDataset,
    ImageFiles,
    SampleTransform,
    StreamingLoader,
    StreamPolicy,
    TorchDataset,
    load_splits,
)

NORM = Augmentation((0.0,), (1.0,))


def _gradient(width: int = 40, height: int = 30) -> Image.Image:
    """Pixel value = column index, so a crop's columns show where it came from."""
    row = np.arange(width, dtype=np.uint8)
    return Image.fromarray(np.tile(row, (height, 1)))


def _indexed(n: int) -> TorchDataset:
    """Sample i is a 12x10 image filled with i; its label is i too."""
    data = [(np.full((10, 12), i, np.uint8), i) for i in range(n)]
    return TorchDataset(data, [str(i) for i in range(n)], channels=1)


def _stream(n: int = 40, batch: int = 4, train: bool = True, workers: int = 0, **kw) -> StreamingLoader:
    return StreamingLoader(
        _indexed(n),
        batch,
        SampleTransform(8, channels=1),
        NORM,
        shuffle=True,
        seed=7,
        drop_last=True,
        train=train,
        workers=workers,
        **kw,
    )


def test_eval_transform_is_a_centre_crop_of_the_shorter_side():
    out = SampleTransform(4, channels=1, eval_crop=0.5)(_gradient(40, 20), None)
    # shorter side 20 -> a 10x10 centre box spans columns 15..25, resized to 4 pixels
    assert out.shape == (1, 4, 4) and out.dtype == torch.uint8
    assert 15 <= out.min().item() and out.max().item() <= 25
    assert torch.equal(out, SampleTransform(4, channels=1, eval_crop=0.5)(_gradient(40, 20), None))


def test_train_transform_is_seeded_per_sample():
    t = SampleTransform(8, channels=1)
    a, b, c = t(_gradient(), 1), t(_gradient(), 1), t(_gradient(), 2)
    assert a.shape == (1, 8, 8) and torch.equal(a, b) and not torch.equal(a, c)
    crops = {tuple(t(_gradient(), s)[0, 0, [0, -1]].tolist()) for s in range(20)}
    assert len(crops) > 10  # random positions and sizes
    assert any(left > right for left, right in crops)  # some are flipped


def test_same_batch_order_as_the_in_memory_loader():
    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 1, 2, 2).contiguous()
    memory = ImageDataset(images, torch.arange(40), tuple(str(i) for i in range(40)))
    for rank in (0, 1):
        ref = BatchLoader(memory, 4, shuffle=True, seed=7, drop_last=True, rank=rank, world_size=2)
        got = _stream(rank=rank, world_size=2)
        assert len(ref) == len(got) == 5
        for epoch in (0, 3):
            labels = [y.tolist() for _, y in got.iter_epoch(epoch)]
            assert labels == [y.tolist() for _, y in ref.iter_epoch(epoch)]
            # every sample is decoded from its own index
            assert [(x[:, 0, 0, 0] * 255).round().long().tolist() for x, _ in got.iter_epoch(epoch)] == labels


def test_batches_do_not_depend_on_workers_and_resume_mid_epoch():
    one, two = _stream(workers=0), _stream(workers=2)
    full = list(one.iter_epoch(2))
    assert len(full) == 10
    tail = list(two.iter_epoch(2, start_batch=6))
    assert len(tail) == 4
    for (xf, yf), (xt, yt) in zip(full[6:], tail, strict=True):
        assert torch.equal(xf, xt) and torch.equal(yf, yt)
    again = list(two.iter_epoch(2))  # the persistent workers serve the next pass from the start
    assert all(torch.equal(a[0], b[0]) for a, b in zip(full, again, strict=True))
    assert not torch.equal(full[0][0], next(two.iter_epoch(3))[0])


def test_image_files_decode_in_workers(tmp_path):
    paths = []
    for i in range(6):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(np.full((48, 64, 3), 40 * i, np.uint8)).save(path)
        paths.append(str(path))
    files = ImageFiles(paths, torch.tensor([0, 1, 0, 1, 0, 1]), ("a", "b"))
    loader = StreamingLoader(files, 3, SampleTransform(16), Augmentation((0.0,) * 3, (1.0,) * 3), workers=1)
    batches = list(loader)
    assert [tuple(x.shape) for x, _ in batches] == [(3, 3, 16, 16)] * 2
    means = torch.cat([x.mean(dim=(1, 2, 3)) for x, _ in batches]) * 255
    assert means.round().tolist() == pytest.approx([0, 40, 80, 120, 160, 200], abs=2)


def test_undecodable_file_is_named(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    files = ImageFiles([str(bad)], torch.tensor([0]), ("a",))
    with pytest.raises(DatasetError, match="bad.jpg"):
        next(iter(StreamingLoader(files, 1, SampleTransform(8), Augmentation((0.0,) * 3, (1.0,) * 3))))


def _tree(root: Path, per_class: int = 6, size=(20, 16)) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), np.uint8)).save(
                    root / split / c / f"{i}.png"
                )


def test_auto_streams_above_the_memory_limit(tmp_path):
    _tree(tmp_path)
    stats = SampleTransform(8)
    small = load_splits(
        "folder", tmp_path, val_size=2, resolution=8, policy=StreamPolicy("auto"), stats_transform=stats
    )
    assert not small.streaming and small.image_shape == (3, 8, 8)
    # 10 training images of 3x8x8 bytes are 1920 bytes: over a 1000-byte limit
    big = load_splits(
        "folder", tmp_path, val_size=2, resolution=8, policy=StreamPolicy("auto", 1000), stats_transform=stats
    )
    assert big.streaming and big.image_shape == (3, 8, 8)
    assert (len(big.train), len(big.val), len(big.test)) == (10, 2, 12)
    assert all(0.4 < m < 0.6 for m in big.mean) and all(0.02 < s < 0.3 for s in big.std)  # noise, smoothed
    with pytest.raises(DatasetError, match="resolution"):
        load_splits("folder", tmp_path, val_size=2, policy=StreamPolicy("disk"))
    with pytest.raises(DatasetError, match="data.stream"):
        StreamPolicy("ram")
