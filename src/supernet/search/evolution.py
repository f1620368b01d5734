"""Evolutionary architecture search, SPOS Algorithm 1 (Guo et al., 2020), as ask/tell.

    P_0 = Initialize(P)                      # P feasible random archs
    for i = 1..T:
        ACC = Inference(P_{i-1})             # ask() -> P archs; tell(results)
        TopK = Update(TopK, P_{i-1}, ACC)    # the k best archs seen so far
        P_i = Crossover(TopK, n) + Mutation(TopK, m, prob)   (+ random fill up to P)
    return the best arch of TopK

Children must satisfy the cheap constraints and (by default, as in the official code) not
duplicate an arch already evaluated in an earlier generation or a member of the population being
built; each operator gets a bounded number of attempts, after which the remaining slots are filled
with feasible random samples (which avoid seen archs for a bounded number of redraws).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from supernet.core.errors import ConfigError
from supernet.core.ranges import AT_LEAST_0, AT_LEAST_1, PROBABILITY, check_fields, register_rules
from supernet.search.objectives import CostFn, Problem
from supernet.search.registry import StrategySpec, register_strategy
from supernet.search.strategy import DEFAULT_MAX_DRAWS, StrategyBase, Told
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace

RANDOM_FILL_TRIES = 10  # random redraws per slot to avoid a duplicate before accepting one


@dataclass(frozen=True)
class EvolutionConfig:
    population: int = 50
    iterations: int = 20
    topk: int = 10
    mutation_prob: float = 0.1
    crossover_num: int | None = None  # None -> population // 2
    mutation_num: int | None = None  # None -> population // 2
    max_attempts: int | None = None  # per operator and generation; None -> 10 * its count
    reject_duplicates: bool = True
    max_draws: int = DEFAULT_MAX_DRAWS  # rejection-sampling draws per random arch
    ranges: Mapping[str, tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        check_fields(self, "search.options")
        if self.n_crossover + self.n_mutation > self.population:
            raise ConfigError(
                f"crossover_num + mutation_num ({self.n_crossover} + {self.n_mutation}) "
                f"exceeds population {self.population}"
            )

    @property
    def n_crossover(self) -> int:
        return self.population // 2 if self.crossover_num is None else self.crossover_num

    @property
    def n_mutation(self) -> int:
        return self.population // 2 if self.mutation_num is None else self.mutation_num

    def attempts(self, count: int) -> int:
        return 10 * count if self.max_attempts is None else self.max_attempts


class Evolution(StrategyBase):
    step_key = "generation"

    def __init__(
        self,
        space: SearchSpace,
        problem: Problem,
        costs: CostFn,
        rng: random.Random,
        config: EvolutionConfig | None = None,
    ) -> None:
        self.config = config or EvolutionConfig()
        super().__init__(space, problem, costs, rng, self.config.topk, self.config.max_draws, self.config.ranges)
        self.generation = 0
        self.population: list[Arch] = []
        self.origins: list[str] = []  # "crossover" / "mutation" / "random", per population member

    @property
    def done(self) -> bool:
        return self.generation >= self.config.iterations

    def ask(self) -> list[Arch]:
        if self.done:
            return []
        if not self.population:
            self._build([])
        self._pending = list(self.population)
        return list(self.population)

    def tell(self, results: Told) -> None:
        self._check_told(results)
        for (arch, metrics), origin in zip(results, self.origins):
            self._record(self.generation, arch, metrics, origin=origin)
        self.generation += 1
        if not self.done:
            self._build([a for a, _ in self.board.top(self.config.topk)])

    # -- building a population -------------------------------------------------------------

    def _build(self, parents: list[Arch]) -> None:
        """Crossover and mutation children of `parents` (the TopK), then random fill."""
        cfg = self.config
        new: list[Arch] = []
        origins: list[str] = []
        members: set[Arch] = set()  # membership tests only, never iterated
        if parents:
            self._fill(new, origins, members, cfg.n_crossover, "crossover", lambda: self._crossover(parents))
            self._fill(new, origins, members, cfg.n_mutation, "mutation", lambda: self._mutate(parents))
        while len(new) < cfg.population:
            self._add(new, origins, members, self._random_member(members), "random")
        self.population, self.origins = new, origins

    def _fill(
        self, new: list[Arch], origins: list[str], members: set[Arch], count: int, origin: str, make: Callable[[], Arch]
    ) -> None:
        target = len(new) + count
        for _ in range(self.config.attempts(count)):
            if len(new) >= target:
                return
            child = make()
            if self.feasible(child) and not self._duplicate(child, members):
                self._add(new, origins, members, child, origin)

    def _random_member(self, members: set[Arch]) -> Arch:
        arch = self.sample()
        for _ in range(RANDOM_FILL_TRIES - 1):
            if not self._duplicate(arch, members):
                break
            arch = self.sample()
        return arch

    def _duplicate(self, arch: Arch, members: set[Arch]) -> bool:
        """In the population being built, or told in an earlier generation (official SPOS: vis_dict)."""
        return self.config.reject_duplicates and (arch in members or arch in self.board.entries)

    @staticmethod
    def _add(new: list[Arch], origins: list[str], members: set[Arch], arch: Arch, origin: str) -> None:
        new.append(arch)
        origins.append(origin)
        members.add(arch)

    # -- variation operators ---------------------------------------------------------------

    def _crossover(self, parents: list[Arch]) -> Arch:
        a, b = self.rng.choice(parents), self.rng.choice(parents)
        return Arch(tuple(self.rng.choice((x, y)) for x, y in zip(a.ops, b.ops)))

    def _mutate(self, parents: list[Arch]) -> Arch:
        parent = self.rng.choice(parents)
        ops = []
        for op, layer in zip(parent.ops, self.space.layers):
            ops.append(self.rng.choice(layer.choices) if self.rng.random() < self.config.mutation_prob else op)
        return Arch(tuple(ops))


register_rules(
    EvolutionConfig,
    {
        "population": AT_LEAST_1,
        "iterations": AT_LEAST_1,
        "topk": AT_LEAST_1,
        "mutation_prob": PROBABILITY,
        "crossover_num": AT_LEAST_0,
        "mutation_num": AT_LEAST_0,
        "max_attempts": AT_LEAST_1,
        "max_draws": AT_LEAST_1,
    },
)
register_strategy("evolution", StrategySpec(Evolution, EvolutionConfig))
