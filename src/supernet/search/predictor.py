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

PREDICTORS = ("none", "additive", "pairs")
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
# `pairs`: the pair weights' own ridge, heavier than the main effects' (63 more weights in NAS-Bench-Macro, each
# seen by ~1/9 of the sample): with main-effects ridge 5, the expected regret at 100 archs was lower than the
# additive model's on five of six NAS-Bench-Macro supernets (0.202 against 0.200 on the sixth), the three held
# out from the choice among them (docs/analysis.md, round 10).
DEFAULT_PAIR_RIDGE = 100.0


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
        w, intercept, r2 = _ridge_fit(x, scores, np.full(x.shape[1], float(ridge)))
        return cls(space, intercept, _per_layer(space, w), r2)


@dataclass(frozen=True)
class PairPredictor:
    """The additive model plus one weight per pair of adjacent layers (in the space's layer order) and pair of
    their choices: what a main-effects model cannot see, how neighbours combine (an expansion after a wide layer
    is not worth what it is after a narrow one). `pair_weights[i]` holds layer i and i + 1's pairs, indexed
    choice_i x len(choices_{i+1}) + choice_{i+1}. Ridge `ridge` on the main effects, `pair_ridge` on the pairs."""

    space: SearchSpace
    intercept: float
    weights: tuple[tuple[float, ...], ...]
    pair_weights: tuple[tuple[float, ...], ...]
    r2: float

    def predict(self, arch: Arch) -> float:
        """The predicted score, clipped to [0, 1] (a score is an accuracy or exp(-loss))."""
        idx = self.space.indices(arch)
        main = sum(w[i] for w, i in zip(self.weights, idx, strict=True))
        following = [len(layer.choices) for layer in self.space.layers[1:]]
        pairs = sum(w[a * n + b] for w, a, b, n in zip(self.pair_weights, idx[:-1], idx[1:], following, strict=True))
        return min(1.0, max(0.0, self.intercept + main + pairs))

    @classmethod
    def fit(
        cls,
        space: SearchSpace,
        archs: Sequence[Arch],
        scores: Sequence[float],
        ridge: float = DEFAULT_RIDGE,
        pair_ridge: float = DEFAULT_PAIR_RIDGE,
    ) -> PairPredictor:
        """Ridge regression of `scores` on the one-hot choices and adjacent choice pairs of `archs`."""
        main, pairs = one_hot(space, archs), pair_one_hot(space, archs)
        penalty = np.concatenate([np.full(main.shape[1], float(ridge)), np.full(pairs.shape[1], float(pair_ridge))])
        w, intercept, r2 = _ridge_fit(np.concatenate([main, pairs], axis=1), scores, penalty)
        sizes = [len(a.choices) * len(b.choices) for a, b in zip(space.layers, space.layers[1:])]
        bounds = np.cumsum([main.shape[1], *sizes])
        pair_weights = tuple(tuple(float(v) for v in w[lo:hi]) for lo, hi in zip(bounds, bounds[1:]))
        return cls(space, intercept, _per_layer(space, w[: main.shape[1]]), pair_weights, r2)


def fit_model(
    kind: str, space: SearchSpace, archs: Sequence[Arch], scores: Sequence[float], ridge: float, pair_ridge: float
) -> AdditivePredictor | PairPredictor:
    """The `search.predictor` model `kind` (additive | pairs) fitted to `scores` of `archs`."""
    if kind == "pairs":
        return PairPredictor.fit(space, archs, scores, ridge, pair_ridge)
    if kind == "additive":
        return AdditivePredictor.fit(space, archs, scores, ridge)
    raise ValueError(f"unknown predictor {kind!r}; expected one of {', '.join(PREDICTORS[1:])}")


def _ridge_fit(x: np.ndarray, scores: Sequence[float], penalty: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(weights, intercept, in-sample R^2) of the ridge regression of `scores` on `x`, column j penalised by
    `penalty[j]`, the intercept not penalised."""
    y = np.asarray(scores, dtype=np.float64)
    x_mean, y_mean = x.mean(axis=0), float(y.mean())
    xc, yc = x - x_mean, y - y_mean
    w = np.linalg.solve(xc.T @ xc + np.diag(penalty), xc.T @ yc)
    residual = yc - xc @ w
    total = float(yc @ yc)
    r2 = 1.0 - float(residual @ residual) / total if total > 0 else 0.0
    return w, y_mean - float(x_mean @ w), r2


def one_hot(space: SearchSpace, archs: Sequence[Arch]) -> np.ndarray:
    """One column per (layer, choice), 1 where the arch takes that choice."""
    offsets = np.cumsum([0, *(len(layer.choices) for layer in space.layers)])
    x = np.zeros((len(archs), int(offsets[-1])))
    for row, arch in enumerate(archs):
        x[row, offsets[:-1] + np.asarray(space.indices(arch))] = 1.0
    return x


def pair_one_hot(space: SearchSpace, archs: Sequence[Arch]) -> np.ndarray:
    """One column per adjacent layer pair (i, i + 1) and pair of their choices: 1 where the arch takes both."""
    idx = np.array([space.indices(a) for a in archs], dtype=np.int64).reshape(len(archs), len(space.layers))
    blocks = [np.zeros((len(archs), 0))]
    for i in range(len(space.layers) - 1):
        following = len(space.layers[i + 1].choices)
        blocks.append(np.eye(len(space.layers[i].choices) * following)[idx[:, i] * following + idx[:, i + 1]])
    return np.concatenate(blocks, axis=1)


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
