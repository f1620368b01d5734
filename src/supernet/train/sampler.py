"""Path samplers: which architectures a supernet training step trains.

Each sampler is a pure function of an injected `random.Random`; the trainer seeds that RNG
from (seed, epoch, step), so every rank of a distributed run and a resumed run draw the same paths.
"""
from __future__ import annotations

import random
from typing import Protocol

from supernet.errors import ConfigError
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace


class Sampler(Protocol):
    name: str

    def paths(self, rng: random.Random) -> list[Arch]:
        """The archs trained in one step; their gradients are summed into one update."""


class UniformSampler:
    """SPOS eq. 8: one path per step, each layer's op drawn uniformly and independently."""

    name = "uniform"

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def paths(self, rng: random.Random) -> list[Arch]:
        return [self.space.sample(rng)]


class FairSampler:
    """FairNAS strict fairness: m paths per step from a random permutation of each layer's ops.

    m is the largest number of candidates of any layer. A layer with fewer candidates n < m
    concatenates shuffled rounds of its ops and takes the first m, so each of its ops is
    used floor(m/n) or ceil(m/n) times per step (exactly once when n == m, the paper's case).
    """

    name = "fair"

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.m = max(len(layer.choices) for layer in space.layers)

    def paths(self, rng: random.Random) -> list[Arch]:
        columns = [self._column(layer.choices, rng) for layer in self.space.layers]
        return [Arch(tuple(col[i] for col in columns)) for i in range(self.m)]

    def _column(self, choices: tuple[str, ...], rng: random.Random) -> list[str]:
        column: list[str] = []
        while len(column) < self.m:
            round_ = list(choices)
            rng.shuffle(round_)
            column += round_
        return column[: self.m]


SAMPLERS = {"uniform": UniformSampler, "fair": FairSampler}


def create_sampler(name: str, space: SearchSpace) -> Sampler:
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler '{name}' (train.sampler); known: {', '.join(SAMPLERS)}")
    return SAMPLERS[name](space)


def step_rng(seed: int, epoch: int, step: int) -> random.Random:
    """The RNG of one training step, identical on every rank and after a resume."""
    return random.Random(f"path:{seed}:{epoch}:{step}")
