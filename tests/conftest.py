"""Shared fixtures: a tiny CPU-sized scarlet-s1 space and a tiny training config."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

TINY_SPACE = dict(
    preset="fashion-mnist", width=0.25, head_channels=32, layers_per_stage=(1, 2, 1, 2, 1, 1), stem_stride=2
)
FASHION = Path("/usr/share/datasets/fashion-mnist")
REPO = Path(__file__).resolve().parents[1]


def shared_path(*parts: str) -> Path:
    """A path under the project's shared folder (papers, data sets): `../shared` beside the checkout, or,
    for a git worktree two levels below it (`wt/<name>`), beside the main checkout. Tests that need it skip
    when it is absent."""
    candidates = (REPO.parent / "shared", REPO.parents[1] / "shared")
    base = next((c for c in candidates if c.is_dir()), candidates[0])
    return base.joinpath(*parts)


@pytest.fixture
def tiny_space():
    from supernet.space import create_space

    return create_space("scarlet-s1", **TINY_SPACE)


def tiny_overrides(**extra: object) -> list[str]:
    """Config overrides for a seconds-long supernet run on a slice of Fashion-MNIST."""
    base = {
        "data.train_limit": 640,
        "data.val_size": 128,
        "space.options": "{width: 0.25, head_channels: 32, layers_per_stage: [1,2,1,2,1,1], stem_stride: 2}",
        "train.epochs": 2,
        "train.batch_size": 64,
        "train.progress": "false",
        "eval.recal_batches": 2,
        "eval.recal_batch_size": 64,
        "eval.val_batch_size": 128,
        "search.population": 6,
        "search.iterations": 2,
        "search.topk": 3,
        "search.num_samples": 6,
        "standalone.epochs": 1,
        "standalone.batch_size": 64,
        "standalone.progress": "false",
    }
    base.update({k.replace("__", "."): v for k, v in extra.items()})
    return [f"{k}={v}" for k, v in base.items()]


def cli_env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "supernet.cli", *args]


needs_fashion = pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST not installed")


def randomize_batchnorm(net):
    """Non-trivial BN statistics and affine values, so that a wrong weight copy shows up; eval mode."""
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            if m.affine:
                m.weight.data.uniform_(0.5, 1.5, generator=g)
                m.bias.data.uniform_(-0.5, 0.5, generator=g)
    return net.eval()
