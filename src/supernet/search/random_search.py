"""Random search baseline (SPOS Table 3): uniform feasible samples, keep the best."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from supernet.core.ranges import AT_LEAST_1, check_fields, register_rules
from supernet.search.objectives import CostFn, Problem
from supernet.search.registry import StrategySpec, register_strategy
from supernet.search.strategy import DEFAULT_MAX_DRAWS, StrategyBase, Told
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace


@dataclass(frozen=True)
class RandomSearchConfig:
    """`num_samples` defaults to SPOS's evolution budget P*T = 50*20 = 1000 evaluations."""

    num_samples: int = 1000
    batch_size: int = 50
    topk: int = 10
    max_draws: int = DEFAULT_MAX_DRAWS
    ranges: Mapping[str, tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        check_fields(self, "search.options")


class RandomSearch(StrategyBase):
    """Draws `num_samples` archs satisfying the cheap constraints (duplicates possible; a
    memoising driver evaluates each distinct arch once) in batches of `batch_size`."""

    step_key = "iteration"

    def __init__(
        self,
        space: SearchSpace,
        problem: Problem,
        costs: CostFn,
        rng: random.Random,
        config: RandomSearchConfig | None = None,
    ) -> None:
        self.config = config or RandomSearchConfig()
        super().__init__(space, problem, costs, rng, self.config.topk, self.config.max_draws, self.config.ranges)
        self.told = 0

    @property
    def done(self) -> bool:
        return self.told >= self.config.num_samples

    def ask(self) -> list[Arch]:
        if self._pending is None:
            n = min(self.config.batch_size, self.config.num_samples - self.told)
            self._pending = [self.sample() for _ in range(n)]
        return list(self._pending)

    def tell(self, results: Told) -> None:
        self._check_told(results)
        for arch, metrics in results:
            self._record(self.told, arch, metrics)
            self.told += 1


register_rules(
    RandomSearchConfig,
    {"num_samples": AT_LEAST_1, "batch_size": AT_LEAST_1, "topk": AT_LEAST_1, "max_draws": AT_LEAST_1},
)
register_strategy("random", StrategySpec(RandomSearch, RandomSearchConfig))
