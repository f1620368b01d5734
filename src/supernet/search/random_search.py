"""Random search baseline (SPOS Table 3): uniform feasible samples, keep the best."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from supernet.core.errors import ConfigError
from supernet.search.objectives import CostFn, Problem
from supernet.search.registry import StrategySpec, register_strategy, set_options
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
        for name in ("num_samples", "batch_size", "topk", "max_draws"):
            require_positive(name, getattr(self, name))


def require_positive(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


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


register_strategy(
    "random",
    StrategySpec(
        RandomSearch, RandomSearchConfig, lambda s: {"num_samples": s.num_samples, **set_options(s, topk="topk")}
    ),
)
