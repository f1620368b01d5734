"""Helpers for the supernet-training tests: synthetic data and tiny trainers (no dataset files).

Imported by the tests as `train_helpers` (this directory is on sys.path under pytest's default
import mode, also in the processes that the distributed test spawns)."""

from __future__ import annotations

import random
from pathlib import Path

import torch

TINY_SPACE = dict(
    preset="fashion-mnist", width=0.25, head_channels=32, layers_per_stage=(1, 2, 1, 2, 1, 1), stem_stride=2
)  # as tests/conftest.py's tiny space


def synthetic_dataset(n: int = 64, seed: int = 0, shape=(1, 28, 28), classes: int = 10):
    from supernet.data import ImageDataset

    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, classes, (n,), generator=g)
    return ImageDataset(images, labels, tuple(str(i) for i in range(classes)))


def trained_like(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial BN statistics/affine values and inter-choice bias vectors (a chain supernet's `biases.*`,
    a cell's `*.biases.*`), so that copying them matters; eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                if m.affine:
                    m.weight.uniform_(0.5, 1.5, generator=g)
                    m.bias.uniform_(-0.5, 0.5, generator=g)
        for name, p in net.named_parameters():
            if name.startswith("biases.") or ".biases." in name:
                p.uniform_(-0.5, 0.5, generator=g)
    return net.eval()


def split_and_perturbed(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """A supernet built with `interchoice="split"`, split now, its copies made to differ (as training would
    leave them) and `trained_like`."""
    origin = net.split_interchoice()
    assert net.is_split and origin and net.split_interchoice() == {}
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return trained_like(net, seed)


def make_trainer(
    net,
    run_dir=None,
    *,
    sampler=None,
    steps=2,
    epochs=2,
    batch=8,
    n=64,
    hooks=(),
    lr=0.05,
    forward=None,
    dist=None,
    rank=0,
    world_size=1,
    seed=0,
    runtime=None,
):
    from supernet.data import BatchLoader
    from supernet.train.loop import OptimConfig, Trainer
    from supernet.train.sampler import UniformSampler, step_rng

    sampler = sampler or UniformSampler(net.space)
    loader = BatchLoader(
        synthetic_dataset(n), batch, shuffle=True, seed=seed, drop_last=True, rank=rank, world_size=world_size
    )
    cfg = OptimConfig(epochs=epochs, lr=lr, max_steps_per_epoch=steps, progress=False)
    forward = forward or (lambda x, a: net(x, a))
    return Trainer(
        net,
        forward,
        lambda e, s: sampler.paths(step_rng(seed, e, s)),
        loader,
        cfg,
        Path(run_dir),
        {"kind": "supernet", "space_fingerprint": net.space.fingerprint()},
        hooks=hooks,
        dist=dist,
        runtime=runtime,
    )


def tiny_space(**extra):
    from supernet.space import create_space

    return create_space("scarlet-s1", **{**TINY_SPACE, **extra})


def rand_arch(space, seed):
    return space.sample(random.Random(seed))
