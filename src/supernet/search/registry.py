"""Strategy registry: each strategy module registers a `StrategySpec` under its name.

A spec says how to build the strategy (class and config dataclass), how the config's `search`
section maps onto its options, and which objectives it optimises; `jobs.search` reads all three from
here, so adding a strategy is one new module (imported by `supernet.search`) and no if-chain.
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

SearchOptions = Callable[[Any], dict[str, Any]]
"""The config's `search` section -> the strategy's options (unset numbers keep the paper defaults)."""


@dataclass(frozen=True)
class StrategySpec:
    strategy: Callable[..., Strategy]  # (space, problem, costs, rng, config) -> Strategy
    config: type  # the options dataclass; unknown options are refused
    options: SearchOptions
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


def set_options(section: Any, **fields: str) -> dict[str, Any]:
    """`{option: section.<field>}` for the fields that are set (not None)."""
    values = {option: getattr(section, field) for option, field in fields.items()}
    return {k: v for k, v in values.items() if v is not None}


def make_config(strategy: str, cls: type, config: dict[str, Any]) -> Any:
    """Build a config dataclass, rejecting unknown options with a one-line ConfigError."""
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ConfigError(f"strategy '{strategy}' has no option '{unknown[0]}'; options: {', '.join(known)}")
    return cls(**config)
