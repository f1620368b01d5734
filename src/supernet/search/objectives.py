"""Search problems as data: objectives to optimise and hard constraints on metrics.

Metrics come from two sources. Cheap metrics ("macs", "params", "latency_ms", ...) come from
a cost function `Callable[[Arch], Mapping[str, float]]` and are checked *before* an arch is
evaluated; evaluation metrics ("accuracy") are only known after evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from supernet.core.errors import ConfigError
from supernet.space.arch import Arch

Metrics = dict[str, float]
"""An arch's named numbers: cheap costs ("macs", "params", ...) and evaluation results ("accuracy")."""

CostFn = Callable[[Arch], Mapping[str, float]]
"""A cost source: arch -> cheap metrics, e.g. {"macs": 3.1e8, "params": 3.4e6}."""

EVAL_METRICS: tuple[str, ...] = ("accuracy",)
"""Metrics only known after evaluating an arch; constraints on them are checked last."""


def format_number(value: float) -> str:
    """Short human form: 330000000 -> '330M', 1.5e9 -> '1.5G', 0.75 -> '0.75'."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.4g}{suffix}"
    return f"{value:.4g}"


@dataclass(frozen=True)
class Constraint:
    """A hard bound on one metric; both bounds inclusive (min <= value <= max)."""

    metric: str
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ConfigError(f"constraint on {self.metric}: min {self.min:g} > max {self.max:g}")

    def satisfied(self, value: float) -> bool:
        if value is None or math.isnan(value):
            return False
        if self.min is not None and value < self.min:
            return False
        return self.max is None or value <= self.max

    def describe(self) -> str:
        lo = None if self.min is None else format_number(self.min)
        hi = None if self.max is None else format_number(self.max)
        if lo is not None and hi is not None:
            return f"{lo} <= {self.metric} <= {hi}"
        if hi is not None:
            return f"{self.metric} <= {hi}"
        if lo is not None:
            return f"{self.metric} >= {lo}"
        return f"{self.metric} (unbounded)"

    def overlaps(self, low: float, high: float) -> bool:
        """Whether any value in [low, high] satisfies the constraint."""
        return (self.min is None or high >= self.min) and (self.max is None or low <= self.max)


@dataclass(frozen=True)
class Objective:
    """One metric to optimise. `weight` is for scalarising strategies; single-objective
    strategies (random, evolution) rank by the problem's first objective only."""

    metric: str
    maximize: bool
    weight: float = 1.0

    def signed(self, value: float) -> float:
        """The value as a quantity to maximise."""
        return value if self.maximize else -value


@dataclass(frozen=True)
class Problem:
    """What a search optimises and what it must satisfy."""

    objectives: tuple[Objective, ...] = (Objective("accuracy", maximize=True),)
    constraints: tuple[Constraint, ...] = ()
    eval_metrics: tuple[str, ...] = field(default=EVAL_METRICS)

    def __post_init__(self) -> None:
        object.__setattr__(self, "objectives", tuple(self.objectives))
        object.__setattr__(self, "constraints", tuple(self.constraints))
        object.__setattr__(self, "eval_metrics", tuple(self.eval_metrics))
        if not self.objectives:
            raise ConfigError("a search problem needs at least one objective")

    @property
    def primary(self) -> Objective:
        return self.objectives[0]

    @property
    def cheap_constraints(self) -> tuple[Constraint, ...]:
        """Constraints checkable from the cost function alone (before evaluation)."""
        return tuple(c for c in self.constraints if c.metric not in self.eval_metrics)

    @property
    def eval_constraints(self) -> tuple[Constraint, ...]:
        return tuple(c for c in self.constraints if c.metric in self.eval_metrics)

    def check_cheap(self, costs: Mapping[str, float]) -> bool:
        return _check(self.cheap_constraints, costs)

    def check_all(self, metrics: Mapping[str, float]) -> bool:
        return _check(self.constraints, metrics)

    def score(self, metrics: Mapping[str, float]) -> float:
        """The primary objective as a value to maximise."""
        return self.primary.signed(float(_get(metrics, self.primary.metric)))

    def rank_key(self, metrics: Mapping[str, float]) -> tuple[float, ...]:
        """Sort key (higher is better): feasible candidates first, then by score; equal scores go to
        the cheaper arch (the constrained cheap metrics in order, then MACs and params)."""
        costs = tuple(-float(metrics[m]) for m in self.tie_metrics if m in metrics)
        return (float(self.check_all(metrics)), self.score(metrics), *costs)

    @property
    def tie_metrics(self) -> tuple[str, ...]:
        """Costs that break ties of the primary objective, lowest first."""
        names = [c.metric for c in self.cheap_constraints] + ["macs", "params"]
        return tuple(m for m in dict.fromkeys(names) if m != self.primary.metric)

    def describe(self) -> str:
        goal = ", ".join(f"{'max' if o.maximize else 'min'} {o.metric}" for o in self.objectives)
        cons = " and ".join(c.describe() for c in self.constraints) or "no constraints"
        return f"{goal} s.t. {cons}"


def _check(constraints: tuple[Constraint, ...], metrics: Mapping[str, float]) -> bool:
    return all(c.satisfied(float(_get(metrics, c.metric))) for c in constraints)


def _get(metrics: Mapping[str, float], metric: str) -> float:
    if metric not in metrics:
        known = ", ".join(sorted(metrics)) or "none"
        raise ConfigError(f"metric '{metric}' is not available; available metrics: {known}")
    return metrics[metric]


def constraint_from_cli(metric: str, min_text: float | str | None, max_text: float | str | None) -> Constraint:
    """Build a Constraint from CLI values (already-unit-parsed numbers or plain float strings)."""
    low, high = _cli_float(metric, "min", min_text), _cli_float(metric, "max", max_text)
    if low is not None and high is not None and low > high:
        raise ConfigError(f"{metric}: min {format_number(low)} is greater than max {format_number(high)}")
    return Constraint(metric, low, high)


def _cli_float(metric: str, which: str, text: float | str | None) -> float | None:
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{metric}: {which} '{text}' is not a number") from None
    if math.isnan(value):
        raise ConfigError(f"{metric}: {which} is NaN")
    return value
