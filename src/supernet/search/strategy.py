"""Common pieces of search strategies: the ask/tell protocol, results, feasible sampling, a driver.

A strategy proposes archs with `ask()`, receives their evaluation metrics with `tell()`, and
stops when `done`. All randomness comes from an injected `random.Random`, and nothing iterates
over hash-ordered containers, so the same seed and the same evaluation results give the same
trajectory (needed to resume a search from a journal).
"""

from __future__ import annotations

import math
import numbers
import random
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from supernet.core.errors import SearchError
from supernet.cost.budget import CostDP
from supernet.search.objectives import Constraint, CostFn, Metrics, Problem, format_number
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace

Told = Sequence[tuple[Arch, Mapping[str, float]]]
DEFAULT_MAX_DRAWS = 10_000
PLAIN_DRAWS_SHARE = 0.5  # under a cost bound met by less of the space, draws come from its dynamic program


@dataclass
class SearchResult:
    """The outcome of a search. `history` rows: step ("generation"/"iteration"), "arch"
    (string), "metrics", "feasible", "best" (best arch so far, string) and "best_score".

    Multi-objective strategies also fill `pareto` (the first non-dominated front of every
    feasible evaluated arch), `ranks` (arch string -> 1-based non-domination rank of every
    evaluated arch; 1 = Pareto front) and `population_ranks` (the same for the final population
    only, the archs the search ends with). They stay out of `to_dict()` when None."""

    best: Arch
    best_metrics: Metrics
    topk: list[tuple[Arch, Metrics]]
    history: list[dict[str, Any]] = field(default_factory=list)
    pareto: list[tuple[Arch, Metrics]] | None = None
    ranks: dict[str, int] | None = None
    population_ranks: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "best": self.best.to_string(),
            "best_metrics": dict(self.best_metrics),
            "topk": [{"arch": a.to_string(), "metrics": dict(m)} for a, m in self.topk],
            "history": [dict(row) for row in self.history],
        }
        if self.pareto is not None:
            out["pareto"] = [{"arch": a.to_string(), "metrics": dict(m)} for a, m in self.pareto]
        if self.ranks is not None:
            out["ranks"] = dict(self.ranks)
        if self.population_ranks is not None:
            out["population_ranks"] = dict(self.population_ranks)
        return out


@runtime_checkable
class Strategy(Protocol):
    @property
    def done(self) -> bool: ...

    def ask(self) -> list[Arch]: ...

    def tell(self, results: Told) -> None: ...

    def result(self) -> SearchResult: ...


def sample_feasible(
    space: SearchSpace,
    rng: random.Random,
    problem: Problem,
    costs: CostFn,
    max_draws: int = DEFAULT_MAX_DRAWS,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> Arch:
    """A uniform random arch satisfying the problem's cheap constraints (rejection sampling).

    Under a bound on an additive cost (MACs, params, BitOps, latency) the draws are not plain uniform
    draws but proposals from the uniform distribution over the archs inside the tightest bound
    (`supernet.cost.budget`, the dynamic program of the uniform-constrained sampler), so a budget that
    only a small share of the space meets costs a few draws, not `max_draws`. `ranges` (metric ->
    achievable (min, max)) lets infeasible constraints fail before drawing. Raises SearchError after
    `max_draws` failed draws.
    """
    cons = problem.cheap_constraints
    if not cons:
        return space.sample(rng)
    _fail_fast(cons, ranges or {})  # before any cost is computed
    propose = _budget_proposal(space, costs, cons)
    seen: dict[str, list[float]] = {c.metric: [] for c in cons}
    for _ in range(max_draws):
        arch = propose(rng) if propose else space.sample(rng)
        if arch is None:
            continue
        cost = costs(arch)
        if problem.check_cheap(cost):
            return arch
        for metric, values in seen.items():
            _track(values, float(cost[metric]))
    desc = " and ".join(c.describe() for c in cons)
    known = _describe_ranges(ranges or {}, seen)
    raise SearchError(f"no architecture satisfied {desc} after {max_draws} draws; {known}")


class _BudgetProposal:
    """Uniform proposals among the archs whose additive cost lies in [low, high] (in the DP's units)."""

    def __init__(self, space: SearchSpace, dp: CostDP, low: float, high: float) -> None:
        self.space, self.dp = space, dp
        self.target = dp.target(low, high)

    def __call__(self, rng: random.Random) -> Arch | None:
        indices = self.dp.propose(rng, self.target)
        return None if indices is None else self.space.from_indices(indices)


_DPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
DP_UNITS = 4096  # CostDP quantises to at least 1; fractional costs spanning less (latency in ms) are scaled up


def _budget_proposal(space: SearchSpace, costs: CostFn, cons: Sequence[Constraint]) -> _BudgetProposal | None:
    """Proposals from the dynamic program of the bounded additive metric (MACs, params, BitOps, latency)
    that the smallest share of the space meets; None where plain uniform draws hit often enough."""
    known = costs(space.from_indices([0] * space.num_layers))  # a metric it lacks fails later, named
    bounds = [c for c in cons if c.metric in known and (c.min is not None or c.max is not None)]
    owner = getattr(costs, "__self__", costs)  # a bound method is a new object at every access
    try:
        built = _DPS.setdefault(owner, {})
    except TypeError:  # a cost function that cannot be weakly referenced: build each time
        built = {}
    best: tuple[float, _BudgetProposal] | None = None
    for bound in bounds:
        share, proposal = _proposal_for(space, costs, bound, built)
        if best is None or share < best[0]:
            best = (share, proposal)
    # plain uniform draws hit often enough when most of the space fits (and are cheaper)
    return best[1] if best is not None and best[0] < PLAIN_DRAWS_SHARE else None


def _proposal_for(space: SearchSpace, costs: CostFn, bound: Constraint, built: dict) -> tuple[float, _BudgetProposal]:
    """(share of the space inside `bound`, proposals inside it); impossible bounds fail with the range."""
    key = (id(space), getattr(costs, "__func__", None), bound.metric)
    if key not in built:
        built[key] = _metric_dp(space, costs, bound.metric)
    dp, scale = built[key]
    low, high = dp.low / scale, dp.high / scale
    _fail_fast((bound,), {bound.metric: (low, high)})  # an impossible bound: say the achievable range
    lo, hi = (dp.low if bound.min is None else bound.min * scale), (dp.high if bound.max is None else bound.max * scale)
    if dp.none_within(lo, hi):
        raise SearchError(
            f"no architecture can satisfy {bound.describe()}: no arch has its {bound.metric} there (the "
            f"achievable range is {bound.metric} {format_number(low)}..{format_number(high)})"
        )
    if (key, bound) not in built:
        proposal = _BudgetProposal(space, dp, lo, hi)
        built[key, bound] = (dp.share(proposal.target), proposal)
    return built[key, bound]


def _metric_dp(space: SearchSpace, costs: CostFn, metric: str) -> tuple[CostDP, float]:
    """The DP over per-layer costs of `metric`, by differences from the all-first-choice arch (MACs,
    params, BitOps and table latencies add up over layers; an exact check of every proposal keeps the
    result right if they did not), and the scale its costs were multiplied by."""
    base = [0] * space.num_layers
    fixed = float(costs(space.from_indices(base))[metric])
    rows = []
    for layer_index, layer in enumerate(space.layers):
        row = [0.0]
        for j in range(1, len(layer.choices)):
            indices = list(base)
            indices[layer_index] = j
            row.append(float(costs(space.from_indices(indices))[metric]) - fixed)
        rows.append(row)
    span = sum(max(row) - min(row) for row in rows)
    integral = float(fixed).is_integer() and all(float(c).is_integer() for row in rows for c in row)
    scale = 1.0 if integral or span >= DP_UNITS or span <= 0 else DP_UNITS / span  # integer costs: exact counts
    return CostDP([[c * scale for c in row] for row in rows], fixed * scale), scale


def _fail_fast(cons: tuple[Constraint, ...], ranges: Mapping[str, tuple[float, float]]) -> None:
    for c in cons:
        if c.metric in ranges and not c.overlaps(*ranges[c.metric]):
            low, high = ranges[c.metric]
            raise SearchError(
                f"no architecture can satisfy {c.describe()}: the achievable range is "
                f"{c.metric} {format_number(low)}..{format_number(high)}"
            )


def _track(values: list[float], value: float) -> None:
    if not values:
        values.extend((value, value))
    else:
        values[0], values[1] = min(values[0], value), max(values[1], value)


def _describe_ranges(ranges: Mapping[str, tuple[float, float]], seen: Mapping[str, list[float]]) -> str:
    parts = []
    for metric, values in seen.items():
        if metric in ranges:
            low, high = ranges[metric]
            parts.append(f"the achievable range is {metric} {format_number(low)}..{format_number(high)}")
        elif values:
            low, high = values
            parts.append(f"the sampled range was {metric} {format_number(low)}..{format_number(high)}")
    return "; ".join(parts)


class Leaderboard:
    """Every arch told so far with its metrics, ranked by `problem.rank_key` (equal keys: first seen)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.entries: dict[Arch, Metrics] = {}
        self.best: tuple[Arch, Metrics] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, arch: Arch, metrics: Metrics) -> None:
        if arch in self.entries:
            return
        self.entries[arch] = metrics
        rank = self.problem.rank_key
        if self.best is None or rank(metrics) > rank(self.best[1]):
            self.best = (arch, metrics)

    def top(self, k: int) -> list[tuple[Arch, Metrics]]:
        ranked = sorted(self.entries.items(), key=lambda it: self.problem.rank_key(it[1]), reverse=True)
        return ranked[:k]


def told_metrics_problem(metrics: Any) -> str | None:
    """Why the metrics told for an arch cannot be ranked, or None: not a mapping, a value that is not a real
    number (a string, a bool, NaN, an infinity), an accuracy outside [0, 1]. (A missing objective is refused
    where it is read, `objectives._get`.)"""
    if not isinstance(metrics, Mapping):
        return f"metrics must be a mapping such as {{'accuracy': 0.71}}, got {type(metrics).__name__}"
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return f"metric {name!r} must be a number, got {value!r} ({type(value).__name__})"
        if not math.isfinite(value):
            return f"metric {name!r} must be a finite number, got {value}"
        if name == "accuracy" and not 0.0 <= value <= 1.0:
            return f"accuracy must be in [0, 1], got {value:g}"
    return None


class StrategyBase:
    """Shared state of single-objective strategies: cached costs, the leaderboard, history."""

    step_key = "iteration"

    def __init__(
        self,
        space: SearchSpace,
        problem: Problem,
        costs: CostFn,
        rng: random.Random,
        topk: int,
        max_draws: int = DEFAULT_MAX_DRAWS,
        ranges: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self.space, self.problem, self.rng = space, problem, rng
        self._costs = costs
        self.k = topk
        self.max_draws = max_draws
        self.ranges = dict(ranges or {})
        self._cost_cache: dict[Arch, Metrics] = {}
        self.board = Leaderboard(problem)
        self.history: list[dict[str, Any]] = []
        self._pending: list[Arch] | None = None

    def costs(self, arch: Arch) -> Metrics:
        if arch not in self._cost_cache:
            self._cost_cache[arch] = {k: v for k, v in self._costs(arch).items()}
        return self._cost_cache[arch]

    def feasible(self, arch: Arch) -> bool:
        return self.problem.check_cheap(self.costs(arch))

    def sample(self) -> Arch:
        return sample_feasible(self.space, self.rng, self.problem, self.costs, self.max_draws, self.ranges)

    def _check_told(self, results: Told) -> None:
        asked = self._pending or []
        if [a for a, _ in results] != asked:
            raise SearchError(
                f"tell() needs results for exactly the {len(asked)} archs of the last ask(), "
                f"in order; got {len(results)}"
            )
        for arch, metrics in results:
            why = told_metrics_problem(metrics)
            if why is not None:
                raise SearchError(f"tell(): arch {arch.to_string()}: {why}")
        self._pending = None

    def _record(self, step: int, arch: Arch, metrics: Mapping[str, float], **extra: Any) -> None:
        merged: Metrics = {**self.costs(arch), **metrics}
        self.board.add(arch, merged)
        best, best_metrics = self.board.best  # type: ignore[misc]
        self.history.append(
            {
                self.step_key: step,
                "arch": arch.to_string(),
                "metrics": merged,
                "feasible": self.problem.check_all(merged),
                **extra,
                "best": best.to_string(),
                "best_score": self.problem.score(best_metrics),
            }
        )

    def result(self) -> SearchResult:
        top = self.board.top(self.k)
        if not top:
            raise SearchError("the search has not evaluated any architecture yet")
        return SearchResult(top[0][0], dict(top[0][1]), [(a, dict(m)) for a, m in top], list(self.history))


def run_search(
    strategy: Strategy,
    evaluate: Callable[[Arch], Mapping[str, float]],
    on_evaluated: Callable[[Arch, Metrics], None] | None = None,
    cache: dict[Arch, Metrics] | None = None,
    evaluate_many: Callable[[list[Arch]], list[Mapping[str, float]]] | None = None,
) -> SearchResult:
    """Loop ask/evaluate/tell until done. Each distinct arch is evaluated once (`cache`, which a
    resumed search may pre-fill); `on_evaluated(arch, metrics)` runs after each real evaluation.

    `evaluate_many` evaluates a generation's missing archs at once (e.g. split across ranks);
    by default they are evaluated one by one with `evaluate`.
    """
    cache = {} if cache is None else cache
    many = evaluate_many or (lambda archs: [evaluate(a) for a in archs])
    while not strategy.done:
        batch = strategy.ask()
        missing = list(dict.fromkeys(a for a in batch if a not in cache))
        for arch, metrics in zip(missing, many(missing), strict=True):
            cache[arch] = dict(metrics)
            if on_evaluated is not None:
                on_evaluated(arch, cache[arch])
        strategy.tell([(arch, cache[arch]) for arch in batch])
    return strategy.result()


def require_feasible(problem: Any, best_metrics: Mapping[str, float], evaluated: int, where: str = "") -> None:
    """A search whose best arch breaks a constraint (e.g. a minimum accuracy) found nothing: SearchError naming
    the constraints and the best accuracy found; `where` is appended (e.g. where the evaluations are kept)."""
    if problem.check_all(best_metrics):
        return
    wanted = " and ".join(c.describe() for c in problem.constraints)
    best = best_metrics.get("accuracy", float("nan"))
    raise SearchError(
        f"none of the {evaluated} evaluated architectures satisfied {wanted}; the best accuracy found was "
        f"{best:.4f}{where}"
    )
