"""Files written crash-safely get the mode a plain write would give them (umask respected, not 0600)."""

import os
import stat

import pytest
import torch

from supernet.core.io import atomic_write_text
from supernet.train.checkpoint import save_checkpoint


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_atomic_writes_respect_the_umask(tmp_path, umask, mask):
    umask(mask)
    atomic_write_text(tmp_path / "report.html", "<html></html>")
    ckpt = save_checkpoint(tmp_path / "checkpoints", {"kind": "supernet"}, {"model": {"w": torch.zeros(2)}})
    (tmp_path / "plain.txt").write_text("x")
    expected = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert expected == 0o666 & ~mask
    for path in (tmp_path / "report.html", ckpt):
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
