"""Search on a predictor fitted to the supernet's scores, not on the scores themselves.

Once-for-all (Cai et al., ICLR 2020, section 3.3) scores a sample of subnets with the supernet, fits an accuracy
predictor to them and runs the evolutionary search on the predictor. We do the same with the simplest predictor
a chain space allows: one additive weight per layer and choice (`additive`), fitted by ridge regression to the
supernet's scores of `samples` archs of the whole space (not only the budget), drawn `depth-balanced` (every
number of non-identity layers equally often: shallow archs, where a layer's choice moves the score most, are 2%
of a uniform draw in NAS-Bench-Macro) or `uniform`.

Why it helps (docs/analysis.md, round 6, NAS-Bench-Macro): a search that maximises the supernet's own score over
~1,000 candidates returns what the supernet over-scores most, its noise and its interaction artefacts (the
winner's curse). The additive predictor keeps what the supernet knows about each choice, averaged over the
sample's contexts, and drops the rest: its pick under a MACs budget is much closer to the budget's best than the
supernet's own, for a sixth of the supernet evaluations.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from supernet.space.arch import Arch
from supernet.space.space import SearchSpace

PREDICTORS = ("none", "additive")
DESIGNS = ("depth-balanced", "uniform")  # how the archs the predictor is fitted to are drawn
MAX_DRAW_FACTOR = 50  # draws per wanted distinct arch before the sample is taken as exhausted
# Ridge: each weight is shrunk to about n / (n + ridge) of its least-squares value, n the sample's archs taking
# that choice. 20 (n ~ 50 at 150 archs and 3 choices: ~70%): the lowest expected regret of the fitted model's pick
# on three NAS-Bench-Macro supernets, lower than 1.0's (the value before) on two held-out ones too
# (docs/analysis.md, round 7: 20 random samples each; the supernet's noise at the top of a budget is damped, its
# main effects kept). A supernet whose op contrasts are right wants less: on `deep-first` supernets 5 had the
# lowest expected regret on both seeds and 20 kept only the depth effect (round 9; configs/cifar10-nas-bench-macro.yaml
# sets 5).
DEFAULT_RIDGE = 20.0


@dataclass(frozen=True)
class AdditivePredictor:
    """score(arch) = intercept + sum over layers of weights[layer][choice]; `r2`: the share of the sample's
    score variance the fit explains (in sample)."""

    space: SearchSpace
    intercept: float
    weights: tuple[tuple[float, ...], ...]
    r2: float

    def predict(self, arch: Arch) -> float:
        """The predicted score, clipped to [0, 1] (a score is an accuracy or exp(-loss))."""
        value = self.intercept + sum(w[i] for w, i in zip(self.weights, self.space.indices(arch), strict=True))
        return min(1.0, max(0.0, value))

    @classmethod
    def fit(
        cls, space: SearchSpace, archs: Sequence[Arch], scores: Sequence[float], ridge: float = DEFAULT_RIDGE
    ) -> AdditivePredictor:
        """Ridge regression of `scores` on the one-hot choices of `archs` (intercept not penalised)."""
        x = one_hot(space, archs)
        y = np.asarray(scores, dtype=np.float64)
        x_mean, y_mean = x.mean(axis=0), float(y.mean())
        xc, yc = x - x_mean, y - y_mean
        w = np.linalg.solve(xc.T @ xc + ridge * np.eye(x.shape[1]), xc.T @ yc)
        residual = yc - xc @ w
        total = float(yc @ yc)
        r2 = 1.0 - float(residual @ residual) / total if total > 0 else 0.0
        intercept = y_mean - float(x_mean @ w)
        return cls(space, intercept, _per_layer(space, w), r2)


def one_hot(space: SearchSpace, archs: Sequence[Arch]) -> np.ndarray:
    """One column per (layer, choice), 1 where the arch takes that choice."""
    offsets = np.cumsum([0, *(len(layer.choices) for layer in space.layers)])
    x = np.zeros((len(archs), int(offsets[-1])))
    for row, arch in enumerate(archs):
        x[row, offsets[:-1] + np.asarray(space.indices(arch))] = 1.0
    return x


def _per_layer(space: SearchSpace, w: np.ndarray) -> tuple[tuple[float, ...], ...]:
    out, start = [], 0
    for layer in space.layers:
        out.append(tuple(float(v) for v in w[start : start + len(layer.choices)]))
        start += len(layer.choices)
    return tuple(out)


def predictor_sample(space: SearchSpace, count: int, seed: int, design: str = "depth-balanced") -> list[Arch]:
    """`count` distinct archs of the whole space (all of it when it holds fewer; fewer when the draws keep
    repeating), drawn by `design`: `uniform` (each layer's choice uniformly) or `depth-balanced` (the number of
    non-identity layers uniformly, then the layers and their ops: the train sampler of that name; in a space
    without identities the same as uniform)."""
    draw = _designs(space)[design]
    rng, seen = random.Random(seed), {}
    wanted = min(count, space.size)
    for _ in range(MAX_DRAW_FACTOR * wanted):
        if len(seen) == wanted:
            break
        seen.setdefault(draw(rng), None)
    return list(seen)


def _designs(space: SearchSpace) -> dict[str, Callable[[random.Random], Arch]]:
    from supernet.train.sampler import DepthBalancedSampler  # torch-free callers (the config rules) import us

    balanced = DepthBalancedSampler(space)
    return {"uniform": space.sample, "depth-balanced": lambda rng: balanced.paths(rng)[0]}
