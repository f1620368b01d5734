"""Strategy registry: `create_strategy(name, space, problem, costs, rng, **config)`."""
from __future__ import annotations

import dataclasses
import random
from typing import Any, Callable

from supernet.errors import ConfigError
from supernet.search.ces import Ces, CesConfig
from supernet.search.evolution import Evolution, EvolutionConfig
from supernet.search.nsga2 import Nsga2, Nsga2Config
from supernet.search.objectives import CostFn, Problem
from supernet.search.random_search import RandomSearch, RandomSearchConfig
from supernet.search.strategy import Strategy
from supernet.space.space import SearchSpace

StrategyFactory = Callable[..., Strategy]
"""`factory(space, problem, costs, rng, **config) -> Strategy`."""

_STRATEGIES: dict[str, StrategyFactory] = {}


def register_strategy(name: str, factory: StrategyFactory) -> None:
    _STRATEGIES[name] = factory


def list_strategies() -> list[str]:
    return sorted(_STRATEGIES)


def create_strategy(
    name: str, space: SearchSpace, problem: Problem, costs: CostFn, rng: random.Random, **config: Any
) -> Strategy:
    if name not in _STRATEGIES:
        raise ConfigError(f"unknown search strategy '{name}'; known: {', '.join(list_strategies())}")
    return _STRATEGIES[name](space, problem, costs, rng, **config)


def make_config(strategy: str, cls: type, config: dict[str, Any]) -> Any:
    """Build a config dataclass, rejecting unknown options with a one-line ConfigError."""
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ConfigError(f"strategy '{strategy}' has no option '{unknown[0]}'; options: {', '.join(known)}")
    return cls(**config)


def _random(space, problem, costs, rng, **config) -> Strategy:
    return RandomSearch(space, problem, costs, rng, make_config("random", RandomSearchConfig, config))


def _evolution(space, problem, costs, rng, **config) -> Strategy:
    return Evolution(space, problem, costs, rng, make_config("evolution", EvolutionConfig, config))


def _nsga2(space, problem, costs, rng, **config) -> Strategy:
    return Nsga2(space, problem, costs, rng, make_config("nsga2", Nsga2Config, config))


def _ces(space, problem, costs, rng, **config) -> Strategy:
    return Ces(space, problem, costs, rng, make_config("ces", CesConfig, config))


register_strategy("random", _random)
register_strategy("evolution", _evolution)
register_strategy("nsga2", _nsga2)
register_strategy("ces", _ces)
