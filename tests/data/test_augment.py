import pytest
import torch

from supernet.core.errors import DatasetError
from supernet.data import Augmentation, default_augmentation

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def _batch(b: int = 16, h: int = 8, w: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(1, 256, (b, 3, h, w), generator=g, dtype=torch.uint8)


def _norm(x: torch.Tensor) -> torch.Tensor:
    return (x.float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def test_eval_is_pure_normalisation():
    x = _batch()
    aug = Augmentation(MEAN, STD, crop_padding=4, horizontal_flip=True)
    out = aug(x, None)
    assert out.dtype == torch.float32
    assert torch.allclose(out, _norm(x))
    assert torch.allclose(default_augmentation("cifar10", MEAN, STD, train=False)(x, torch.Generator()), _norm(x))


def test_crop_keeps_shape_and_is_deterministic():
    x = _batch(h=8, w=10)
    aug = Augmentation(MEAN, STD, crop_padding=2, horizontal_flip=True)
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    c = aug(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)


def test_flip_only_flips_some_samples():
    x = _batch(b=64)
    out = Augmentation(MEAN, STD, horizontal_flip=True)(x, torch.Generator().manual_seed(0))
    ref = _norm(x)
    flipped = torch.tensor([torch.allclose(o, r.flip(-1)) for o, r in zip(out, ref)])
    same = torch.tensor([torch.allclose(o, r) for o, r in zip(out, ref)])
    assert bool((flipped | same).all())
    assert 10 < int(flipped.sum()) < 54


def test_crop_is_padded_shift():
    x = _batch(b=32)
    p = 2
    out = Augmentation(MEAN, STD, crop_padding=p)(x, torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    shifted = 0
    for o, pd in zip(out, padded):
        windows = [
            (dy, dx)
            for dy in range(2 * p + 1)
            for dx in range(2 * p + 1)
            if torch.allclose(o, _norm(pd[None, :, dy : dy + 8, dx : dx + 8])[0])
        ]
        assert windows, "output is not a crop of the padded input"
        shifted += windows[0] != (p, p)
    assert shifted > 0


def test_defaults_and_errors():
    assert default_augmentation("fashion-mnist", (0.5,), (0.5,), True).crop_padding == 2
    assert default_augmentation("cifar100", MEAN, STD, True).crop_padding == 4
    assert default_augmentation("folder", MEAN, STD, True, resolution=224).crop_padding == 0
    assert default_augmentation("folder", MEAN, STD, True, resolution=32).crop_padding == 4
    with pytest.raises(DatasetError):
        default_augmentation("nope", MEAN, STD, True)
    with pytest.raises(DatasetError):
        Augmentation(MEAN, STD)(_batch()[:, :1], None)
