"""Path samplers: which architectures a supernet training step trains.

Each sampler is a pure function of an injected `random.Random`; the trainer seeds that RNG
from (seed, epoch, step), so every rank of a distributed run and a resumed run draw the same paths.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from supernet.core.errors import ConfigError, SupernetError
from supernet.core.ranges import AT_LEAST_0, AT_LEAST_1, PROBABILITY, check_fields, register_rules
from supernet.core.registry import Registry
from supernet.cost.bitops import METRIC as BITOPS
from supernet.cost.budget import CostDP
from supernet.model.supernet import MultiPath, SupernetPath
from supernet.space.arch import Arch
from supernet.space.opnames import IDENTITY
from supernet.space.space import LayerSpec, SearchSpace


class Sampler(Protocol):
    name: str

    def paths(self, rng: random.Random) -> list[SupernetPath]:
        """The paths trained in one step; their gradients are summed into one update. A sampler whose draws
        change over training (`DeepFirstSampler`) also has `paths_at(rng, progress)`: see `draw_paths`."""


class UniformSampler:
    """SPOS eq. 8: one path per step, each layer's op drawn uniformly and independently.

    `paths`: independent draws per step (their gradients summed; two for `train.pairwise_rank_weight`).
    `identity_prob`: a layer that offers an identity takes it with this probability and one of its other ops
    uniformly otherwise (None: the identity is one choice among the others, plain uniform). Below uniform it
    trains deep paths more often than uniform strings do (NAS-Bench-Macro: 1/3 per layer, 4% of the draws
    full depth)."""

    name = "uniform"

    def __init__(self, space: SearchSpace, identity_prob: float | None = None, paths: int = 1) -> None:
        self.space, self.identity_prob, self.count = space, identity_prob, paths
        # per layer, its ops other than the identity (None: the layer has no identity or nothing else)
        self.others = [_skippable(layer) for layer in space.layers]

    def paths(self, rng: random.Random) -> list[Arch]:
        return [self._draw(rng) for _ in range(self.count)]

    def _draw(self, rng: random.Random) -> Arch:
        if self.identity_prob is None:
            return self.space.sample(rng)
        ops = zip(self.space.layers, self.others)
        return Arch(tuple(self._layer_op(layer.choices, others, rng) for layer, others in ops))

    def _layer_op(self, choices: tuple[str, ...], others: tuple[str, ...] | None, rng: random.Random) -> str:
        if others is None:
            return rng.choice(choices)
        return IDENTITY if rng.random() < self.identity_prob else rng.choice(others)


def _skippable(layer: LayerSpec) -> tuple[str, ...] | None:
    """A layer's ops other than the identity; None where it offers no identity or nothing else."""
    others = layer.non_identity
    return others if others and len(others) < len(layer.choices) else None


class DeepFirstSampler:
    """Once-for-all's progressive shrinking in depth, for chain spaces with identities: the first `fraction`
    of the training draws only full-depth paths (each layer uniformly among its non-identity ops), the rest
    uniform paths. With `supernet.canonical: true` the uniform phase trains every network in canonical form
    (identities at the end of their stage, as once-for-all keeps the first d blocks of a stage)."""

    name = "deep-first"

    def __init__(self, space: SearchSpace, fraction: float = 0.25) -> None:
        self.space, self.fraction = space, fraction
        self.deep = [layer.non_identity or layer.choices for layer in space.layers]

    def paths(self, rng: random.Random) -> list[Arch]:
        """The uniform phase's draw (a caller that knows the training's progress uses `paths_at`)."""
        return [self.space.sample(rng)]

    def paths_at(self, rng: random.Random, progress: float) -> list[Arch]:
        """The paths of a step at `progress` (the fraction of the training's steps done before it)."""
        if progress < self.fraction:
            return [Arch(tuple(rng.choice(ops) for ops in self.deep))]
        return self.paths(rng)


def draw_paths(sampler: Sampler, rng: random.Random, progress: float) -> list[Any]:
    """The step's paths: `sampler.paths_at(rng, progress)` for a sampler whose draws change over training
    (`progress` in [0, 1): the fraction of the steps done), `sampler.paths(rng)` for any other."""
    scheduled = getattr(sampler, "paths_at", None)
    return scheduled(rng, progress) if scheduled is not None else sampler.paths(rng)


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


class ConstrainedSampler:
    """SPOS section 3, uniform constraint sampling: pick one of `bins` cost ranges uniformly, then
    redraw uniform archs until one falls in it. One path per step.

    The cost is the space's cost metric (`metric`; default BitOps where the cost table has them,
    i.e. quantized spaces such as resnet18-quant, whose bit-widths change no MACs; MACs otherwise).
    The ranges are `bins` equal-width bins over the space's achievable range [min, max] (the
    last one closed). In the large spaces the outer bins hold a tiny share of the archs (scarlet-s1:
    about 1 in 10^4 uniform draws), so redraws are not plain uniform draws but proposals from the
    uniform distribution restricted to a slightly widened range, computed by dynamic programming over
    per-layer costs quantised to `units` steps; a proposal is kept if its exact cost falls in the bin.
    That is rejection sampling with a better proposal: the result is uniform over the archs of the
    bin, as with the paper's redraws, at a few proposals per step. After `max_redraws` misses the
    sampler raises SupernetError (e.g. a bin that holds no arch: use fewer `train.sampler_options.bins`).
    """

    name = "uniform-constrained"

    def __init__(
        self,
        space: SearchSpace,
        identity: str = "skip",
        bins: int = 5,
        table: Any = None,
        units: int = 4096,
        max_redraws: int = 1000,
        metric: str | None = None,
    ) -> None:
        if bins < 1:
            raise ConfigError(f"train.sampler_options.bins must be >= 1, got {bins}")
        if table is None:
            from supernet.cost import CostTable

            table = CostTable.build(space, identity)
        self.space, self.table, self.max_redraws = space, table, max_redraws
        self.metric = metric if metric is not None else cost_metric_of(table)
        lo, hi = (int(v) for v in table.range(self.metric))
        self.edges = [lo + (hi - lo) * i // bins for i in range(bins)] + [hi + 1]  # bin i: [e_i, e_{i+1})
        self.dp = CostDP(self._layer_costs(), table.fixed(self.metric), units)
        self.targets = [self.dp.target(a, b) for a, b in zip(self.edges[:-1], self.edges[1:])]

    def _layer_costs(self) -> list[list[int]]:
        dense = self.table.layer_costs(self.metric)
        order = [list(c) for c in self.table.choices]
        return [
            [int(dense[l, order[l].index(op)]) for op in layer.choices] for l, layer in enumerate(self.space.layers)
        ]

    @property
    def bins(self) -> list[tuple[int, int]]:
        """The cost ranges [low, high)."""
        return list(zip(self.edges[:-1], self.edges[1:]))

    def draw(self, rng: random.Random) -> tuple[int, Arch]:
        """One (bin, arch) draw; the arch's cost lies in `bins[bin]`."""
        b = rng.randrange(len(self.edges) - 1)
        lo, hi = self.edges[b], self.edges[b + 1]
        for _ in range(self.max_redraws):
            arch = self._propose(rng, *self.targets[b])
            if arch is not None and lo <= self.table.value(arch, self.metric) < hi:
                return b, arch
        raise SupernetError(
            f"uniform-constrained sampling: no arch with {self.metric} in [{lo}, {hi}) after "
            f"{self.max_redraws} redraws; use fewer train.sampler_options.bins"
        )

    def _propose(self, rng: random.Random, low: int, high: int) -> Arch | None:
        """A uniform arch among those whose quantised cost sum lies in [low, high]."""
        indices = self.dp.propose(rng, (low, high))
        if indices is None:
            return None
        return Arch(tuple(layer.choices[j] for layer, j in zip(self.space.layers, indices)))

    def paths(self, rng: random.Random) -> list[Arch]:
        return [self.draw(rng)[1]]


def cost_metric_of(table: Any) -> str:
    """The cost a space is budgeted in: BitOps where its cost table counts them (quantized spaces), else MACs."""
    return BITOPS if BITOPS in table.metrics else "macs"


class PathDropoutSampler:
    """SPOS Fig. 1's baseline: a multi-path step where each candidate of each layer is dropped with
    probability `drop_rate`; if a layer drops all, one uniformly chosen candidate is kept (as SPOS
    did, its choice blocks have no identity branch). drop_rate = 1 is uniform single-path sampling."""

    name = "path-dropout"

    def __init__(self, space: SearchSpace, drop_rate: float = 0.5) -> None:
        self.space, self.drop_rate = space, drop_rate

    def paths(self, rng: random.Random) -> list[MultiPath]:
        layers = []
        for layer in self.space.layers:
            kept = tuple(op for op in layer.choices if rng.random() >= self.drop_rate)
            layers.append(kept or (rng.choice(layer.choices),))
        return [MultiPath(tuple(layers))]


class DepthBalancedSampler:
    """One path per step with the number of non-identity layers drawn uniformly from the depths the space
    allows, then which layers uniformly among those that offer an identity, then each chosen layer's op
    uniformly among its other choices. Under uniform sampling deep paths are rare (NAS-Bench-Macro: 4% of the
    draws have all 8 layers) and their training is spread over many weight paths, so a short training
    undervalues depth; here every depth gets the same share of the steps."""

    name = "depth-balanced"

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.ops = [layer.non_identity for layer in space.layers]
        self.optional = [i for i, layer in enumerate(space.layers) if IDENTITY in layer.choices and self.ops[i]]
        self.forced = [i for i, ops in enumerate(self.ops) if IDENTITY not in space.layers[i].choices]

    @property
    def depths(self) -> range:
        """The numbers of non-identity layers an arch of the space can have."""
        return range(len(self.forced), len(self.forced) + len(self.optional) + 1)

    def paths(self, rng: random.Random) -> list[Arch]:
        depth = rng.choice(self.depths)
        active = set(self.forced) | set(rng.sample(self.optional, depth - len(self.forced)))
        return [Arch(tuple(rng.choice(self.ops[i]) if i in active else IDENTITY for i in range(len(self.ops))))]


class SandwichSampler:
    """The sandwich rule (BigNAS; once-for-all's progressive shrinking trains the same corners): each step
    trains the largest path, the smallest path and `random` uniformly drawn ones, the largest first (with
    `train.distill` it teaches the others, in-place distillation).

    "Largest" and "smallest" are BigNAS's and once-for-all's: the maximum (minimum) in every dimension of a
    layer's candidates (depth: no identity; width, expansion, kernel, bit widths), the cost (BitOps in
    quantized spaces, else MACs) only between candidates that do not compare (`supernet.train.corners`).
    """

    name = "sandwich"

    def __init__(self, space: SearchSpace, identity: str = "skip", random_paths: int = 2, table: Any = None) -> None:
        from supernet.train.corners import sandwich_corners

        if table is None:
            from supernet.cost import CostTable

            table = CostTable.build(space, identity)
        self.space, self.random_paths = space, random_paths
        metric = BITOPS if BITOPS in table.metrics else "macs"
        self.largest, self.smallest = sandwich_corners(space, identity, table.layer_values(metric))

    def paths(self, rng: random.Random) -> list[Arch]:
        return [self.largest, self.smallest, *(self.space.sample(rng) for _ in range(self.random_paths))]


@dataclass(frozen=True)
class NoOptions:
    """A sampler without options."""


@dataclass(frozen=True)
class UniformOptions:
    identity_prob: float | None = None  # None: the identity is one choice among the others (SPOS)
    paths: int = 1  # independent draws per step (2 for train.pairwise_rank_weight)

    def __post_init__(self) -> None:
        check_fields(self, "train.sampler_options")


@dataclass(frozen=True)
class DeepFirstOptions:
    fraction: float = 0.25  # the first fraction of the training that draws only full-depth paths

    def __post_init__(self) -> None:
        check_fields(self, "train.sampler_options")


@dataclass(frozen=True)
class ConstrainedOptions:
    bins: int = 5  # equal-width cost bins over the achievable range (SPOS section 3)

    def __post_init__(self) -> None:
        check_fields(self, "train.sampler_options")


@dataclass(frozen=True)
class PathDropoutOptions:
    drop_rate: float = 0.5  # probability of dropping each candidate (1: uniform single-path sampling)

    def __post_init__(self) -> None:
        check_fields(self, "train.sampler_options")


@dataclass(frozen=True)
class SandwichOptions:
    random_paths: int = 2  # uniform paths per step beside the largest and the smallest (BigNAS: 2)

    def __post_init__(self) -> None:
        check_fields(self, "train.sampler_options")


register_rules(UniformOptions, {"identity_prob": PROBABILITY, "paths": AT_LEAST_1})
register_rules(DeepFirstOptions, {"fraction": PROBABILITY})
register_rules(ConstrainedOptions, {"bins": AT_LEAST_1})
register_rules(PathDropoutOptions, {"drop_rate": PROBABILITY})
register_rules(SandwichOptions, {"random_paths": AT_LEAST_0})


@dataclass(frozen=True)
class SamplerSpec:
    """How to build a sampler: `build(space, identity, options)` and its options dataclass (the config's
    `train.sampler_options`, unknown names refused)."""

    build: Callable[[SearchSpace, str, Any], Sampler]
    options: type = NoOptions


SAMPLERS: Registry[SamplerSpec] = Registry("sampler", ConfigError, hint="train.sampler")


def register_sampler(name: str, spec: SamplerSpec) -> SamplerSpec:
    return SAMPLERS.register(name, spec)


register_sampler(
    "uniform",
    SamplerSpec(lambda space, identity, o: UniformSampler(space, o.identity_prob, o.paths), UniformOptions),
)
register_sampler(
    "deep-first", SamplerSpec(lambda space, identity, o: DeepFirstSampler(space, o.fraction), DeepFirstOptions)
)
register_sampler("fair", SamplerSpec(lambda space, identity, o: FairSampler(space)))
register_sampler(
    "uniform-constrained",
    SamplerSpec(lambda space, identity, o: ConstrainedSampler(space, identity, o.bins), ConstrainedOptions),
)
register_sampler(
    "path-dropout", SamplerSpec(lambda space, identity, o: PathDropoutSampler(space, o.drop_rate), PathDropoutOptions)
)
register_sampler("depth-balanced", SamplerSpec(lambda space, identity, o: DepthBalancedSampler(space)))
register_sampler(
    "sandwich",
    SamplerSpec(lambda space, identity, o: SandwichSampler(space, identity, o.random_paths), SandwichOptions),
)


def create_sampler(name: str, space: SearchSpace, identity: str = "skip", **options: Any) -> Sampler:
    """The registered sampler `name` over `space`; `options` are its options dataclass's fields."""
    spec = SAMPLERS.get(name)
    known = [f.name for f in dataclasses.fields(spec.options)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"sampler '{name}' has no option '{unknown[0]}'; options: {', '.join(known) or 'none'} "
            f"(train.sampler_options)"
        )
    return spec.build(space, identity, spec.options(**options))


def step_rng(seed: int, epoch: int, step: int) -> random.Random:
    """The RNG of one training step, identical on every rank and after a resume."""
    return random.Random(f"path:{seed}:{epoch}:{step}")
