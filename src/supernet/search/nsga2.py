"""SCARLET-NAS's constrained, weighted NSGA-II (Chu et al., Algorithm 1 of Appendix B), as ask/tell.

    max {acc, -madds, params}  weights 0.4 / 0.4 / 0.2 (the Problem's Objective.weight)
    s.t. acc > acc_min (config, default 0.4), madds <= madds_max (a cheap Problem constraint)

    P_0, Q_0 = uniform samples until each has n individuals satisfying C_FLOPS, C_acc
    for i = 0..N-1:
        R_i = P_i + Q_i;  P_{i+1} = n best of R_i by rank, then weighted crowding distance
        while |Q_{i+1}| < n:
            q = crossover(M) or hierarchical-mutation(M), M = tournament-selection(P_{i+1})
            FLOPS(q) > max -> discard before evaluation (cheap constraint, regenerate)
            evaluate q; if acc(q) > acc_min: add q to Q_{i+1}   (else: evaluated, kept in
                                                                 the history, not admitted)
    return K models equally spaced (in MACs) along the Pareto front

Interpretation of the paper's hyperparameters (Table 7; the text gives only names, so this
follows the hierarchical mutation of MoreMNAS/FairNAS that SCARLET cites):

* population n = 70, generations N = 120 (70 x 120 = 8400 models, section 5.1).
* p_M = 0.7 / p_K-M = 0.3: each offspring is made by hierarchical mutation of one tournament
  winner (probability p_M) or by single-point crossover of two winners (p_K-M).
* mutation ratio = 0.8: the probability that a crossover child is then also passed through the
  hierarchical mutation (crossover-then-mutation, as in standard NSGA-II).
* hierarchical mutation: mutation sites are layers drawn with probability 1/L each (at least
  one); each site gets a different choice of its layer, drawn by one of three kinds:
  p_rm = 0.2 random mutation (uniform over the other choices);
  p_re = 0.65 exploitation ("reinforced" mutation; a PPO controller in the paper, here a
  roulette wheel weighted by 1 + how often each choice occurs in the first front of P);
  p_pr = 0.15 exploration (roulette wheel weighted by 1 / (1 + how often each choice occurs in
  the whole P), favouring rarely used choices).
* Binary tournaments compare (rank, weighted crowding distance); ties go to the first drawn.
* Weighted crowding distance (Friedrich et al.): each objective's normalised crowding term is
  multiplied by its weight; boundary points of a positively weighted objective get infinity.
* Filling a population is bounded by `max_rounds` ask/tell rounds (the paper's loop is
  unbounded): a generation then goes on with the offspring admitted so far, and the initial
  fill raises SearchError when no evaluated arch satisfies the constraints.
* Final selection: `topk` (K = 3) models of the first front of every feasible evaluated arch,
  nearest to K equally spaced values of `spread_metric` (MACs). The paper selects from P_N;
  the archive front contains it (NSGA-II is elitist) and does not drop the last offspring.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from supernet.core.errors import ConfigError, SearchError
from supernet.core.ranges import AT_LEAST_0, AT_LEAST_1, PROBABILITY, check_fields, register_rules
from supernet.search.objectives import Constraint, CostFn, Metrics, Objective, Problem, _get, format_number
from supernet.search.registry import StrategySpec, register_strategy
from supernet.search.strategy import DEFAULT_MAX_DRAWS, SearchResult, StrategyBase, Told
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace

SCARLET_OBJECTIVES: tuple[Objective, ...] = (
    Objective("accuracy", maximize=True, weight=0.4),
    Objective("macs", maximize=False, weight=0.4),
    Objective("params", maximize=True, weight=0.2),
)
"""SCARLET's max {acc, -madds, params} with w_acc = w_madds = 0.4, w_params = 0.2."""

RANDOM_FILL_TRIES = 10


# -- NSGA-II building blocks -------------------------------------------------------------------


def objective_matrix(objectives: Sequence[Objective], metrics: Sequence[Mapping[str, float]]) -> np.ndarray:
    """An (n, m) matrix of objective values to minimise (maximised objectives negated)."""
    rows = [[-o.signed(float(_get(m, o.metric))) for o in objectives] for m in metrics]
    return np.array(rows, dtype=float).reshape(len(rows), len(objectives))


def nondominated_fronts(F: np.ndarray, feasible: Sequence[bool] | None = None) -> list[list[int]]:
    """Fronts (row indices, ascending) by pymoo's non-dominated sorting. With `feasible`, every
    feasible row ranks before every infeasible one (infeasible rows are sorted among themselves)."""
    flags = [True] * len(F) if feasible is None else list(feasible)
    fronts: list[list[int]] = []
    for want in (True, False):
        group = [i for i, ok in enumerate(flags) if ok is want]
        if group:
            for front in NonDominatedSorting().do(F[group]):
                fronts.append(sorted(group[j] for j in front))
    return fronts


def weighted_crowding(F: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Crowding distance of the rows of one front with each objective's term times its weight.

    Rows at either end of a positively weighted objective get infinity; fronts of at most two
    rows are all infinite (as in Deb et al. 2002)."""
    n = len(F)
    dist = np.zeros(n)
    if n <= 2:
        dist[:] = math.inf
        return dist
    for j, w in enumerate(weights):
        if w <= 0:
            continue
        order = np.argsort(F[:, j], kind="stable")
        span = F[order[-1], j] - F[order[0], j]
        if span > 0:
            dist[order[1:-1]] += w * (F[order[2:], j] - F[order[:-2], j]) / span
        dist[order[0]] = dist[order[-1]] = math.inf
    return dist


def select_survivors(
    F: np.ndarray, feasible: Sequence[bool], weights: Sequence[float], n: int
) -> tuple[list[int], list[int], list[float]]:
    """NSGA-II environmental selection of `n` rows: whole fronts while they fit, then the rows
    of the last front with the largest weighted crowding distance (ties: lower index).

    Returns the chosen row indices and, per chosen row, its 0-based rank and crowding distance."""
    chosen: list[int] = []
    ranks: list[int] = []
    crowd: list[float] = []
    for rank, front in enumerate(nondominated_fronts(F, feasible)):
        if len(chosen) >= n:
            break
        dist = weighted_crowding(F[front], weights)
        keep = sorted(range(len(front)), key=lambda k: -dist[k])[: n - len(chosen)]
        for k in sorted(keep):
            chosen.append(front[k])
            ranks.append(rank)
            crowd.append(float(dist[k]))
    return chosen, ranks, crowd


def equally_spaced(values: Sequence[float], k: int) -> list[int]:
    """Indices of `k` entries nearest to k equally spaced targets in [min, max] of `values`
    (each picked once; ties: lower index), in ascending order of value."""
    if len(values) <= k:
        return sorted(range(len(values)), key=lambda i: (values[i], i))
    low, high = min(values), max(values)
    targets = [low] if k == 1 else [low + j * (high - low) / (k - 1) for j in range(k)]
    picked: list[int] = []
    for t in targets:
        free = [i for i in range(len(values)) if i not in picked]
        picked.append(min(free, key=lambda i: (abs(values[i] - t), i)))
    return sorted(picked, key=lambda i: (values[i], i))


# -- shared NSGA-II ask/tell machinery ---------------------------------------------------------


class NsgaBase(StrategyBase):
    """Generational NSGA-II over archs. Generation 0 fills the initial population with feasible
    random archs (`init_factor` x population), each later generation fills an offspring
    population (`_vary`); `_admit` decides which evaluated archs join it. History rows carry the
    generation and the "origin" of each arch (random / mutation / crossover)."""

    step_key = "generation"
    init_factor = 1

    def __init__(
        self,
        space: SearchSpace,
        problem: Problem,
        costs: CostFn,
        rng: random.Random,
        *,
        population: int,
        generations: int,
        topk: int,
        max_attempts: int,
        max_rounds: int,
        max_draws: int,
        ranges: Mapping[str, tuple[float, float]] | None,
        spread_metric: str | None = None,
    ) -> None:
        super().__init__(space, problem, costs, rng, topk, max_draws, ranges)
        self.n, self.generations = population, generations
        self.max_attempts, self.max_rounds = max_attempts, max_rounds
        self.weights = [o.weight for o in problem.objectives]
        metrics = [o.metric for o in problem.objectives]
        self.spread_metric = spread_metric if spread_metric in metrics else metrics[min(1, len(metrics) - 1)]
        self.generation = 0
        self.parents: list[tuple[Arch, Metrics]] = []  # P, after environmental selection
        self.parent_rank: list[int] = []
        self.parent_crowd: list[float] = []
        self.offspring: list[tuple[Arch, Metrics]] = []  # admitted members of the population being filled
        self.rounds = 0
        self._tried: set[Arch] = set()  # archs asked while filling this population (membership only)
        self._origins: list[str] = []
        self._finished = False
        self._checked = False

    @property
    def done(self) -> bool:
        return self._finished

    def target(self) -> int:
        return self.init_factor * self.n if self.generation == 0 else self.n

    def ask(self) -> list[Arch]:
        if self.done:
            return []
        if self._pending is None:
            self._pending, self._origins = self._propose(self.target() - len(self.offspring))
        return list(self._pending)

    def tell(self, results: Told) -> None:
        self._check_told(results)
        for (arch, metrics), origin in zip(results, self._origins):
            self._record(self.generation, arch, metrics, origin=origin)
            merged = {**self.costs(arch), **metrics}
            self._check_metrics(merged)
            if self._admit(merged):
                self.offspring.append((arch, merged))
        self.rounds += 1
        if len(self.offspring) >= self.target() or self.rounds >= self.max_rounds:
            self._close()

    # -- hooks ---------------------------------------------------------------------------------

    def _admit(self, metrics: Metrics) -> bool:
        return True

    def _vary(self) -> tuple[Arch, str]:
        raise NotImplementedError

    def _final(self, pareto: list[tuple[Arch, Metrics]]) -> list[tuple[Arch, Metrics]]:
        raise NotImplementedError

    # -- populations ---------------------------------------------------------------------------

    def _close(self) -> None:
        if self.generation == 0 and not self.offspring:
            desc = " and ".join(c.describe() for c in self.problem.eval_constraints) or "the constraints"
            raise SearchError(
                f"no architecture satisfied {desc} in {len(self.history)} evaluations "
                f"({self.rounds} rounds of the initial population); relax the constraint"
            )
        pool = self.parents + self.offspring
        F = objective_matrix(self.problem.objectives, [m for _, m in pool])
        feasible = [self.problem.check_all(m) for _, m in pool]
        chosen, self.parent_rank, self.parent_crowd = select_survivors(F, feasible, self.weights, self.n)
        self.parents = [pool[i] for i in chosen]
        self.offspring, self.rounds, self._tried = [], 0, set()
        self._on_parents()
        if self.generation >= self.generations:
            self._finished = True
        else:
            self.generation += 1

    def _on_parents(self) -> None:
        """Called after each environmental selection (e.g. to update choice statistics)."""

    def _propose(self, count: int) -> tuple[list[Arch], list[str]]:
        members = self._tried | {a for a, _ in self.parents} | {a for a, _ in self.offspring}
        batch, origins = [], []
        for _ in range(count):
            if self.generation == 0:
                arch, origin = self._random_member(members), "random"
            else:
                arch, origin = self._child(members)
            batch.append(arch)
            origins.append(origin)
            members.add(arch)
        self._tried |= set(batch)
        return batch, origins

    def _child(self, members: set[Arch]) -> tuple[Arch, str]:
        """A child satisfying the cheap constraints (violators are discarded and regenerated),
        preferably not already in the population; after `max_attempts`, a random arch."""
        fallback = None
        for _ in range(self.max_attempts):
            child, origin = self._vary()
            if not self.feasible(child):
                continue
            if child not in members:
                return child, origin
            fallback = fallback or (child, origin)
        return fallback or (self._random_member(members), "random")

    def _random_member(self, members: set[Arch]) -> Arch:
        arch = self.sample()
        for _ in range(RANDOM_FILL_TRIES - 1):
            if arch not in members:
                break
            arch = self.sample()
        return arch

    def tournament(self) -> Arch:
        """Binary tournament on P by (rank, -weighted crowding); ties go to the first drawn."""
        i, j = self.rng.randrange(len(self.parents)), self.rng.randrange(len(self.parents))
        key = lambda k: (self.parent_rank[k], -self.parent_crowd[k])  # noqa: E731
        return self.parents[i if key(i) <= key(j) else j][0]

    def _check_metrics(self, metrics: Metrics) -> None:
        if not self._checked:
            for o in self.problem.objectives:
                _get(metrics, o.metric)  # ConfigError naming the missing metric
            self._checked = True

    # -- result --------------------------------------------------------------------------------

    def result(self) -> SearchResult:
        entries = list(self.board.entries.items())  # first-seen order
        if not entries:
            raise SearchError("the search has not evaluated any architecture yet")
        feasible = [self.problem.check_all(m) for _, m in entries]
        if not any(feasible):
            desc = " and ".join(c.describe() for c in self.problem.constraints)
            best = max(float(m.get("accuracy", float("nan"))) for _, m in entries)
            raise SearchError(
                f"none of the {len(entries)} evaluated architectures satisfied {desc}; "
                f"the best accuracy found was {best:.4f}"
            )
        fronts = nondominated_fronts(objective_matrix(self.problem.objectives, [m for _, m in entries]), feasible)
        rank_of = {i: r for r, front in enumerate(fronts, 1) for i in front}
        ranks = {a.to_string(): rank_of[i] for i, (a, _) in enumerate(entries)}
        key = lambda it: (float(it[1].get(self.spread_metric, 0.0)), -self.problem.score(it[1]))  # noqa: E731
        pareto = sorted((entries[i] for i in fronts[0]), key=key)
        best, best_metrics = self.board.best  # type: ignore[misc]
        return SearchResult(
            best,
            dict(best_metrics),
            [(a, dict(m)) for a, m in self._final(pareto)],
            list(self.history),
            [(a, dict(m)) for a, m in pareto],
            ranks,
            self._population_ranks(),
        )

    def _population_ranks(self) -> dict[str, int] | None:
        """The final population (P after the last environmental selection), arch string -> 1-based
        non-domination rank. Whole fronts are kept, so a member's rank within P equals its rank in
        the pool it was selected from."""
        if not self.parents:
            return None
        return {a.to_string(): rank + 1 for (a, _), rank in zip(self.parents, self.parent_rank, strict=True)}


def _roulette(rng: random.Random, items: list[str], weights: list[float]) -> str:
    return rng.choices(items, weights=weights)[0]


# -- SCARLET -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nsga2Config:
    """Defaults: SCARLET-NAS Table 7 (and section 4.2 for acc_min, 5.1 for the generations)."""

    population: int = 70
    generations: int = 120
    topk: int = 3  # K models equally spaced along the Pareto front
    acc_min: float | None = 0.4  # accuracy > acc_min; None: off
    mutation_ratio: float = 0.8  # P(a crossover child is also mutated)
    p_rm: float = 0.2  # mutation site: random choice
    p_re: float = 0.65  # mutation site: exploitation (roulette by first-front frequency)
    p_pr: float = 0.15  # mutation site: exploration (roulette by inverse frequency in P)
    p_m: float = 0.7  # offspring by mutation
    p_km: float = 0.3  # offspring by crossover
    spread_metric: str = "macs"
    max_rounds: int = 10  # ask/tell rounds to fill one population
    max_attempts: int = 20  # tries per child to satisfy the cheap constraints / avoid duplicates
    max_draws: int = DEFAULT_MAX_DRAWS
    ranges: Mapping[str, tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        check_fields(self, "search.options")
        if not math.isclose(self.p_rm + self.p_re + self.p_pr, 1.0, abs_tol=1e-9):
            raise ConfigError(f"p_rm + p_re + p_pr must be 1, got {self.p_rm + self.p_re + self.p_pr:g}")
        if not math.isclose(self.p_m + self.p_km, 1.0, abs_tol=1e-9):
            raise ConfigError(f"p_m + p_km must be 1, got {self.p_m + self.p_km:g}")


register_rules(
    Nsga2Config,
    {
        "population": AT_LEAST_1,
        "generations": AT_LEAST_0,
        "topk": AT_LEAST_1,
        "acc_min": PROBABILITY,
        **dict.fromkeys(("mutation_ratio", "p_rm", "p_re", "p_pr", "p_m", "p_km"), PROBABILITY),
        **dict.fromkeys(("max_rounds", "max_attempts", "max_draws"), AT_LEAST_1),
    },
)


def with_min_accuracy(problem: Problem, acc_min: float | None, metric: str = "accuracy") -> Problem:
    """The problem plus the strict constraint `metric > acc_min` (checked after evaluation)."""
    if acc_min is None:
        return problem
    strict = Constraint(metric, min=math.nextafter(float(acc_min), math.inf))
    return Problem(problem.objectives, problem.constraints + (strict,), problem.eval_metrics)


class Nsga2(NsgaBase):
    """SCARLET's constrained, weighted NSGA-II; see the module docstring."""

    init_factor = 2  # P_0 and Q_0

    def __init__(
        self, space: SearchSpace, problem: Problem, costs: CostFn, rng: random.Random, config: Nsga2Config | None = None
    ) -> None:
        self.config = cfg = config or Nsga2Config()
        super().__init__(
            space,
            with_min_accuracy(problem, cfg.acc_min),
            costs,
            rng,
            population=cfg.population,
            generations=cfg.generations,
            topk=cfg.topk,
            max_attempts=cfg.max_attempts,
            max_rounds=cfg.max_rounds,
            max_draws=cfg.max_draws,
            ranges=cfg.ranges,
            spread_metric=cfg.spread_metric,
        )
        self._elite: list[dict[str, int]] = []
        self._usage: list[dict[str, int]] = []

    def _admit(self, metrics: Metrics) -> bool:
        return self.problem.check_all(metrics)

    def _close(self) -> None:
        if self.generation == 0 and not self.offspring and self.config.acc_min is not None:
            best = max(
                (float(row["metrics"].get("accuracy", float("nan"))) for row in self.history), default=float("nan")
            )
            raise SearchError(
                f"no architecture reached accuracy > {format_number(self.config.acc_min)} in "
                f"{len(self.history)} evaluations (the best accuracy found was {best:.4f}); lower acc_min "
                f"(search.min_acc, --min-acc)"
            )
        super()._close()

    def _on_parents(self) -> None:
        def counts(archs: list[Arch]) -> list[dict[str, int]]:
            table: list[dict[str, int]] = [{} for _ in self.space.layers]
            for arch in archs:
                for layer, op in zip(table, arch.ops):
                    layer[op] = layer.get(op, 0) + 1
            return table

        self._elite = counts([a for (a, _), r in zip(self.parents, self.parent_rank) if r == 0])
        self._usage = counts([a for a, _ in self.parents])

    def _vary(self) -> tuple[Arch, str]:
        cfg = self.config
        if self.rng.random() < cfg.p_m:
            return self.mutate(self.tournament()), "mutation"
        child = self.crossover(self.tournament(), self.tournament())
        if self.rng.random() < cfg.mutation_ratio:
            child = self.mutate(child)
        return child, "crossover"

    def crossover(self, a: Arch, b: Arch) -> Arch:
        """Single-point crossover; one of the two children, at random."""
        if len(a) < 2:
            return self.rng.choice((a, b))
        cut = self.rng.randrange(1, len(a))
        first, second = (a, b) if self.rng.random() < 0.5 else (b, a)
        return Arch(first.ops[:cut] + second.ops[cut:])

    def mutate(self, arch: Arch) -> Arch:
        """Hierarchical mutation: sites with probability 1/L (at least one), each by random /
        exploitation / exploration choice with probabilities p_rm / p_re / p_pr."""
        cfg, rng, layers = self.config, self.rng, self.space.layers
        sites = [i for i in range(len(layers)) if rng.random() < 1.0 / len(layers)] or [rng.randrange(len(layers))]
        ops = list(arch.ops)
        for i in sites:
            others = [c for c in layers[i].choices if c != ops[i]]
            if not others:
                continue
            u = rng.random()
            if u < cfg.p_rm:
                ops[i] = rng.choice(others)
            elif u < cfg.p_rm + cfg.p_re:
                ops[i] = _roulette(rng, others, [1.0 + self._elite[i].get(c, 0) for c in others])
            else:
                ops[i] = _roulette(rng, others, [1.0 / (1 + self._usage[i].get(c, 0)) for c in others])
        return Arch(tuple(ops))

    def _final(self, pareto: list[tuple[Arch, Metrics]]) -> list[tuple[Arch, Metrics]]:
        values = [float(m.get(self.spread_metric, 0.0)) for _, m in pareto]
        return [pareto[i] for i in equally_spaced(values, self.k)]


register_strategy(
    "nsga2",
    StrategySpec(
        Nsga2,
        Nsga2Config,
        objectives=SCARLET_OBJECTIVES,
        applies_min_acc=True,
    ),
)
