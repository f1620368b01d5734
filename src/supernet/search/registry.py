"""Strategy registry: each strategy module registers a `StrategySpec` under its name.

A spec says how to build the strategy (class and options dataclass) and which objectives it optimises.
The strategy owns its options: the config's `search.options` mapping is checked by its options dataclass
(unknown names refused, ranges from the one rules table, `supernet.core.ranges`, which the module
registers beside the dataclass), so adding a strategy with options is one new module and no if-chain.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from supernet.core.errors import ConfigError
from supernet.core.registry import Registry
from supernet.search.objectives import CostFn, Objective, Problem
from supernet.search.strategy import Strategy
from supernet.space.space import SearchSpace


@dataclass(frozen=True)
class StrategySpec:
    strategy: Callable[..., Strategy]  # (space, problem, costs, rng, config) -> Strategy
    config: type  # the options dataclass (`search.options`); unknown options are refused
    objectives: tuple[Objective, ...] = (Objective("accuracy", True),)
    applies_min_acc: bool = False  # the strategy enforces search.min_acc itself (SCARLET's acc_min)


STRATEGIES: Registry[StrategySpec] = Registry("search strategy")


def register_strategy(name: str, spec: StrategySpec) -> StrategySpec:
    return STRATEGIES.register(name, spec)


def list_strategies() -> list[str]:
    return STRATEGIES.names()


def create_strategy(
    name: str, space: SearchSpace, problem: Problem, costs: CostFn, rng: random.Random, **config: Any
) -> Strategy:
    spec = STRATEGIES.get(name)
    return spec.strategy(space, problem, costs, rng, make_config(name, spec.config, config))


def make_config(strategy: str, cls: type, config: dict[str, Any]) -> Any:
    """Build a config dataclass, rejecting unknown options with a one-line ConfigError."""
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ConfigError(f"strategy '{strategy}' has no option '{unknown[0]}'; options: {', '.join(known)}")
    return cls(**config)
