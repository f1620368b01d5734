"""Supernet training on a streamed image folder: a run stopped mid-epoch and resumed is the uninterrupted run."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from supernet.config.schema import load_config
from supernet.jobs.train import train_supernet
from supernet.runs.build import load_data
from supernet.train import loop

SPACE = "{width: 0.25, head_channels: 32, layers_per_stage: [1,2,1,2,1,1], stem_stride: 2}"


def _tree(root: Path, per_class: int = 20) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in range(3):
            (root / split / str(c)).mkdir(parents=True)
            for i in range(per_class if split == "train" else 4):
                size = rng.integers(24, 40, 2)
                image = rng.integers(0, 255, (size[1], size[0], 3), np.uint8)
                image[:, :, c] = 255  # a learnable class signal
                Image.fromarray(image).save(root / split / str(c) / f"{i}.jpg")


def _config(root: Path, **extra: object):
    items = {
        "data.name": "folder",
        "data.root": str(root),
        "data.resolution": 20,
        "data.stream": "disk",
        "data.workers": 2,
        "data.val_size": 12,
        "space.options": SPACE,
        "train.epochs": 2,
        "train.batch_size": 8,
        "train.progress": "false",
        "train.checkpoint_every_steps": 2,
        **extra,
    }
    return load_config(None, [f"{k}={v}" for k, v in items.items()])


def _losses(run_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["global_step"]: r["loss"] for r in rows if r["type"] == "step"}


def test_streamed_run_resumes_exactly(tmp_path, monkeypatch):
    _tree(tmp_path / "data")
    assert load_data(_config(tmp_path / "data")).streaming
    train_supernet(_config(tmp_path / "data"), tmp_path / "ref")

    real_step, calls = loop.Trainer._step, []

    def crash_at_step_6(self, *args):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt  # a kill between checkpoints (the last was written after step 4)
        return real_step(self, *args)

    monkeypatch.setattr(loop.Trainer, "_step", crash_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(_config(tmp_path / "data"), tmp_path / "run")
    monkeypatch.setattr(loop.Trainer, "_step", real_step)
    # a different number of decode processes is the same run
    train_supernet(_config(tmp_path / "data", **{"data.workers": 0}), tmp_path / "run", resume=True)
    ref, run = _losses(tmp_path / "ref"), _losses(tmp_path / "run")
    assert sorted(ref) == sorted(run) == list(range(1, 13))
    assert all(ref[s] == pytest.approx(run[s], abs=1e-6) for s in ref)
