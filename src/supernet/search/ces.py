"""PAD-NAS Constrained Evolutionary Search (CES, Wang et al., section 3): NSGA-II with hard
cheap constraints, as ask/tell.

    max accuracy, min latency   s.t.  Lat_min <= latency <= Lat_max

* The objectives come from the Problem (default for PAD-NAS: CES_OBJECTIVES); the latency
  bounds are its cheap constraints (any cheap constraint works: macs, params, latency_ms...).
* Children violating a cheap constraint are discarded at crossover and mutation and
  regenerated (never evaluated); nothing else is discarded: every evaluated arch is sorted by
  non-domination rank and crowding distance (constraints on evaluation metrics, if any, only
  rank violators after all satisfying archs).
* Two-point crossover (probability `crossover_prob`, else a copy of the first parent), then
  each layer mutated with probability `mutation_prob` (default 1/L) to an op drawn uniformly
  from the layer's other ops. PAD-NAS names polynomial mutation, an operator for ordered
  (real-valued) genes; ops are unordered, and polynomial mutation of the list index left 63% of
  mutations from index 0 of 7 unchanged and made the list order decide the rest (issue 28.5).
* Population 64 and 40 iterations (PAD-NAS section 4).
* The result's `population_ranks` maps each arch of the final population to its 1-based
  non-domination rank (PAD-NAS counts operation frequencies over the archs after the search with
  rank < 10), `ranks` every evaluated arch to its rank among all evaluated archs (the archive);
  `pareto` is the rank-1 front, `topk` the most accurate archs satisfying the constraints.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from supernet.core.ranges import AT_LEAST_0, AT_LEAST_1, PROBABILITY, check_fields, register_rules
from supernet.search.nsga2 import NsgaBase
from supernet.search.objectives import CostFn, Metrics, Objective, Problem
from supernet.search.registry import StrategySpec, register_strategy
from supernet.search.strategy import DEFAULT_MAX_DRAWS
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace

CES_OBJECTIVES: tuple[Objective, ...] = (
    Objective("accuracy", maximize=True),
    Objective("latency_ms", maximize=False),
)


@dataclass(frozen=True)
class CesConfig:
    """Defaults: PAD-NAS section 4 (population 64, 40 iterations)."""

    population: int = 64
    iterations: int = 40
    topk: int = 10
    crossover_prob: float = 0.9
    mutation_prob: float | None = None  # per layer; None -> 1 / number of layers
    max_attempts: int = 20  # tries per child to satisfy the cheap constraints / avoid duplicates
    max_draws: int = DEFAULT_MAX_DRAWS
    ranges: Mapping[str, tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        check_fields(self, "search.options")


register_rules(
    CesConfig,
    {
        "population": AT_LEAST_1,
        "iterations": AT_LEAST_0,
        "topk": AT_LEAST_1,
        "crossover_prob": PROBABILITY,
        "mutation_prob": PROBABILITY,
        "max_attempts": AT_LEAST_1,
        "max_draws": AT_LEAST_1,
    },
)


class Ces(NsgaBase):
    """PAD-NAS constrained evolutionary search; see the module docstring."""

    def __init__(
        self, space: SearchSpace, problem: Problem, costs: CostFn, rng: random.Random, config: CesConfig | None = None
    ) -> None:
        self.config = cfg = config or CesConfig()
        super().__init__(
            space,
            problem,
            costs,
            rng,
            population=cfg.population,
            generations=cfg.iterations,
            topk=cfg.topk,
            max_attempts=cfg.max_attempts,
            max_rounds=1,
            max_draws=cfg.max_draws,
            ranges=cfg.ranges,
        )
        self.mutation_prob = 1.0 / space.num_layers if cfg.mutation_prob is None else cfg.mutation_prob

    def _vary(self) -> tuple[Arch, str]:
        a, b = self.tournament(), self.tournament()
        crossed = self.rng.random() < self.config.crossover_prob
        child = self.crossover(a, b) if crossed else a
        return self.mutate(child), "crossover" if crossed else "mutation"

    def crossover(self, a: Arch, b: Arch) -> Arch:
        """Two-point crossover: b's layers between two cut points, a's elsewhere (or vice versa)."""
        if self.rng.random() < 0.5:
            a, b = b, a
        lo, hi = sorted((self.rng.randrange(len(a) + 1), self.rng.randrange(len(a) + 1)))
        return Arch(a.ops[:lo] + b.ops[lo:hi] + a.ops[hi:])

    def mutate(self, arch: Arch) -> Arch:
        ops = list(arch.ops)
        for i, layer in enumerate(self.space.layers):
            if self.rng.random() < self.mutation_prob:
                ops[i] = self.other_op(layer.choices, ops[i])
        return Arch(tuple(ops))

    def other_op(self, choices: tuple[str, ...], op: str) -> str:
        """An op drawn uniformly from `choices` other than `op` (`op` itself when it is the only one)."""
        others = [c for c in choices if c != op]
        return self.rng.choice(others) if others else op

    def _final(self, pareto: list[tuple[Arch, Metrics]]) -> list[tuple[Arch, Metrics]]:
        return [(a, m) for a, m in self.board.top(len(self.board)) if self.problem.check_all(m)][: self.k]


register_strategy(
    "ces",
    StrategySpec(
        Ces,
        CesConfig,
        objectives=(Objective("accuracy", True), Objective("macs", False)),
    ),
)
