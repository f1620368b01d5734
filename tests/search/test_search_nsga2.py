"""SCARLET's weighted, constrained NSGA-II and PAD-NAS's CES."""

import json
import math
import random
import statistics
import time

import numpy as np
import pytest
from conftest import OP_MACS

from supernet.core.errors import ConfigError, SearchError
from supernet.search import (
    CES_OBJECTIVES,
    SCARLET_OBJECTIVES,
    Ces,
    CesConfig,
    Constraint,
    Nsga2,
    Nsga2Config,
    Objective,
    Problem,
    create_strategy,
    list_strategies,
    run_search,
)
from supernet.search.nsga2 import (
    equally_spaced,
    nondominated_fronts,
    objective_matrix,
    select_survivors,
    weighted_crowding,
)

SCARLET = Problem(SCARLET_OBJECTIVES, (Constraint("macs", max=110e6),))


def latency_costs(arch):
    macs = sum(OP_MACS[op] for op in arch)
    return {"macs": macs * 1e6, "params": macs * 1e5, "latency_ms": 2.0 * macs + 0.5 * sum(op == "id" for op in arch)}


def _dominates(a, b, objectives):
    va = [o.signed(a[o.metric]) for o in objectives]
    vb = [o.signed(b[o.metric]) for o in objectives]
    return all(x >= y for x, y in zip(va, vb)) and va != vb


# -- building blocks -----------------------------------------------------------------------------

# A 2-objective front (minimise both), sorted by f1; one dominated point last.
FRONT = np.array([[0, 10], [1, 2], [2, 1], [9, 0.5], [10, 0], [10, 10]], dtype=float)


def test_weighted_crowding_values():
    d = weighted_crowding(FRONT[:5], [0.9, 0.1])
    assert math.isinf(d[0]) and math.isinf(d[4])
    assert d[1:4] == pytest.approx([0.9 * 0.2 + 0.1 * 0.9, 0.9 * 0.8 + 0.1 * 0.15, 0.9 * 0.8 + 0.1 * 0.1])
    # a zero-weighted objective neither adds distance nor makes its boundary points infinite
    d = weighted_crowding(np.array([[0, 3], [1, 2], [2, 0], [3, 1]], dtype=float), [1.0, 0.0])
    assert math.isinf(d[0]) and math.isinf(d[3]) and d[1] == pytest.approx(2 / 3) and d[2] == pytest.approx(2 / 3)
    assert np.isinf(weighted_crowding(FRONT[:2], [1, 1])).all()


@pytest.mark.parametrize("weights, interior", [((0.1, 0.9), 1), ((0.9, 0.1), 2), ((1.0, 1.0), 1), ((1.0, 0.0), 2)])
def test_weights_change_the_survivors(weights, interior):
    chosen, ranks, crowd = select_survivors(FRONT, [True] * 6, weights, 3)
    assert chosen == sorted([0, 4, interior]) and ranks == [0, 0, 0]
    assert [math.isinf(c) for c in crowd] == [i in (0, 4) for i in chosen]
    # whole first front fits: the dominated point comes last; infeasible points rank after feasible ones
    assert select_survivors(FRONT, [True] * 6, weights, 6)[0][-1] == 5
    chosen, ranks, _ = select_survivors(FRONT, [True] * 5 + [False], weights, 6)
    assert chosen[-1] == 5 and ranks[-1] == 1
    assert nondominated_fronts(FRONT, [False, True, True, True, True, True]) == [[1, 2, 3, 4], [5], [0]]


def test_equally_spaced():
    values = [0, 1, 2, 4.9, 5.2, 9, 10]
    assert equally_spaced(values, 3) == [0, 3, 6]
    assert equally_spaced(values, 1) == [0]
    assert equally_spaced([3, 1, 2], 5) == [1, 2, 0]
    assert equally_spaced([1, 1, 1, 1], 3) == [0, 1, 2]


# -- SCARLET NSGA-II -----------------------------------------------------------------------------


def _synthetic(space, seed):
    """Accuracy conflicting with MACs (additive per-op quality ~ sqrt(macs)) and its exact front."""
    r = random.Random(seed)
    quality = [{op: OP_MACS[op] ** 0.5 * r.uniform(0.5, 1.5) / 60 for op in layer.choices} for layer in space.layers]
    costs = lambda a: {"macs": float(sum(OP_MACS[o] for o in a))}  # noqa: E731
    evaluate = lambda a: {"accuracy": sum(quality[i][o] for i, o in enumerate(a))}  # noqa: E731
    best = {0: 0.0}  # dynamic programming over layers: max accuracy per total macs
    for i, layer in enumerate(space.layers):
        nxt = {}
        for m, v in best.items():
            for op in layer.choices:
                nxt[m + OP_MACS[op]] = max(nxt.get(m + OP_MACS[op], -1.0), v + quality[i][op])
        best = nxt
    front, top = [], -1.0
    for m, v in sorted(best.items()):
        if v > top:
            front.append((m, v))
            top = v
    return costs, evaluate, np.array(front)


def _igd(front, found):
    scale = front.max(0) - front.min(0)
    pts = np.array(found) / scale
    return float(np.mean([np.min(np.linalg.norm(pts - p, axis=1)) for p in front / scale]))


def test_nsga2_approaches_known_front_better_than_random(full_space):
    problem = Problem((Objective("accuracy", True), Objective("macs", False)))
    ratios = []
    for seed in range(3):
        costs, evaluate, front = _synthetic(full_space, seed)
        nsga = run_search(
            create_strategy(
                "nsga2", full_space, problem, costs, random.Random(seed), population=24, generations=20, acc_min=None
            ),
            evaluate,
        )
        rand = run_search(
            create_strategy("random", full_space, problem, costs, random.Random(seed), num_samples=len(nsga.history)),
            evaluate,
        )
        assert len(nsga.history) == 2 * 24 + 20 * 24 == len(rand.history)  # same budget
        points = lambda r: [(row["metrics"]["macs"], row["metrics"]["accuracy"]) for row in r.history]  # noqa: E731
        ratios.append(_igd(front, points(nsga)) / _igd(front, points(rand)))
    assert max(ratios) < 0.9 and statistics.mean(ratios) < 0.8


def test_nsga2_generations_constraints_and_final_selection(small_space, costs, make_target_eval):
    evaluate = make_target_eval(small_space.sample(random.Random(4)))
    cfg = Nsga2Config(population=10, generations=6, acc_min=0.3)
    s = Nsga2(small_space, SCARLET, costs, random.Random(2), cfg)
    assert s.weights == [0.4, 0.4, 0.2]
    asked = []
    while not s.done:
        gen, batch = s.generation, s.ask()
        assert batch and all(SCARLET.check_cheap(costs(a)) for a in batch)  # macs checked before evaluation
        asked.append((gen, len(batch)))
        s.tell([(a, evaluate(a)) for a in batch])
        admitted = s.parents + s.offspring
        assert all(m["accuracy"] > 0.3 for _, m in admitted)
        assert len(s.parents) <= 10
    assert s.ask() == []
    assert asked[0] == (0, 20)  # P_0 and Q_0
    assert {g for g, _ in asked} == set(range(7))
    result = s.result()
    rows = result.history
    assert len(rows) == sum(n for _, n in asked)
    assert {r["origin"] for r in rows if r["generation"] == 0} == {"random"}
    assert {r["origin"] for r in rows if r["generation"] > 0} <= {"mutation", "crossover", "random"}
    assert any(not r["feasible"] for r in rows)  # accuracy violators are evaluated, kept, not admitted
    feasible = [(r["arch"], r["metrics"]) for r in rows if r["feasible"]]
    pareto = {a.to_string() for a, _ in result.pareto}
    for arch, m in result.pareto:  # the front of every feasible evaluated arch
        assert not any(_dominates(other, m, SCARLET_OBJECTIVES) for _, other in feasible)
        assert result.ranks[arch.to_string()] == 1 and m["accuracy"] > 0.3
    assert all(_dominates_some(m, result.pareto) for a, m in feasible if a not in pareto)
    macs = [m["macs"] for _, m in result.topk]
    assert len(result.topk) == 3 and macs == sorted(macs) and {a for a, _ in result.topk} <= set(dict(result.pareto))
    front_macs = [m["macs"] for _, m in result.pareto]
    assert macs[0] == min(front_macs) and macs[-1] == max(front_macs)
    assert result.best_metrics["accuracy"] == max(m["accuracy"] for _, m in feasible)
    json.dumps(result.to_dict())


def _dominates_some(m, pareto):
    return any(_dominates(p, m, SCARLET_OBJECTIVES) or p == m for _, p in pareto)


@pytest.mark.parametrize(
    "name, config", [("nsga2", {"population": 8, "generations": 4}), ("ces", {"population": 8, "iterations": 4})]
)
def test_same_seed_same_result(small_space, make_target_eval, name, config):
    evaluate = make_target_eval(small_space.sample(random.Random(9)))
    problem = Problem(CES_OBJECTIVES, (Constraint("latency_ms", 30, 90),))

    def run(seed):
        return run_search(
            create_strategy(name, small_space, problem, latency_costs, random.Random(seed), **config), evaluate
        ).to_dict()

    a, b, c = run(5), run(5), run(6)
    assert a == b and json.loads(json.dumps(a)) == a
    assert [r["arch"] for r in a["history"]] != [r["arch"] for r in c["history"]]


def test_infeasible_constraints_fail_fast(small_space, costs, make_target_eval):
    evaluate = make_target_eval(small_space.sample(random.Random(1)))
    impossible = Problem(SCARLET_OBJECTIVES, (Constraint("macs", max=1e6),))
    for name in ("nsga2", "ces"):
        start = time.perf_counter()
        with pytest.raises(SearchError, match="achievable range is macs"):
            run_search(
                create_strategy(name, small_space, impossible, costs, random.Random(0), ranges={"macs": (0, 70e6)}),
                evaluate,
            )
        # without ranges the MACs dynamic program knows the achievable range: no 500 blind draws
        with pytest.raises(SearchError, match=r"no architecture can satisfy macs <= 1M: the achievable range"):
            run_search(create_strategy(name, small_space, impossible, costs, random.Random(0), max_draws=500), evaluate)
        assert time.perf_counter() - start < 2.0
    calls = []
    counting = lambda a: calls.append(a) or evaluate(a)  # noqa: E731
    start = time.perf_counter()
    with pytest.raises(SearchError, match=r"accuracy > 1 in \d+ evaluations"):
        run_search(create_strategy("nsga2", small_space, SCARLET, costs, random.Random(0), acc_min=1.0), counting)
    assert time.perf_counter() - start < 2.0 and len(calls) <= 10 * 140  # max_rounds x (P_0 + Q_0)
    hopeless = Problem(CES_OBJECTIVES, (Constraint("accuracy", min=2.0),))
    with pytest.raises(SearchError, match="none of the .* evaluated architectures satisfied accuracy >= 2"):
        run_search(
            create_strategy("ces", small_space, hopeless, latency_costs, random.Random(0), population=6, iterations=2),
            evaluate,
        )


def test_missing_objective_metric(small_space, costs, make_target_eval):
    problem = Problem((Objective("accuracy", True), Objective("latency_ms", False)))
    with pytest.raises(ConfigError, match="metric 'latency_ms' is not available"):
        run_search(
            create_strategy("ces", small_space, problem, costs, random.Random(0), population=4, iterations=1),
            make_target_eval(small_space.sample(random.Random(0))),
        )


def test_configs_and_registry(small_space, costs):
    assert {"nsga2", "ces", "evolution", "random"} <= set(list_strategies())
    cfg = Nsga2Config()
    assert (cfg.population, cfg.generations, cfg.acc_min, cfg.topk) == (70, 120, 0.4, 3)
    assert (cfg.mutation_ratio, cfg.p_rm, cfg.p_re, cfg.p_pr, cfg.p_m, cfg.p_km) == (0.8, 0.2, 0.65, 0.15, 0.7, 0.3)
    assert (CesConfig().population, CesConfig().iterations) == (64, 40)
    with pytest.raises(ConfigError, match="p_rm \\+ p_re \\+ p_pr must be 1"):
        Nsga2Config(p_rm=0.5)
    with pytest.raises(ConfigError, match="p_m \\+ p_km must be 1"):
        Nsga2Config(p_m=0.5)
    with pytest.raises(ConfigError, match="mutation_ratio"):
        Nsga2Config(mutation_ratio=2)
    with pytest.raises(ConfigError, match="strategy 'ces' has no option 'generations'"):
        create_strategy("ces", small_space, SCARLET, costs, random.Random(0), generations=3)
    s = create_strategy("nsga2", small_space, SCARLET, costs, random.Random(0), acc_min=None)
    assert s.problem == SCARLET


# -- PAD-NAS CES ---------------------------------------------------------------------------------


def test_ces_respects_latency_bounds_and_reports_ranks(full_space, make_target_eval):
    evaluate = make_target_eval(full_space.sample(random.Random(3)))
    problem = Problem(CES_OBJECTIVES, (Constraint("latency_ms", min=150, max=200),))
    result = run_search(
        create_strategy("ces", full_space, problem, latency_costs, random.Random(0), population=16, iterations=10),
        evaluate,
    )
    rows = result.history
    assert len(rows) == 16 * 11  # nothing discarded after evaluation: full populations every generation
    assert all(150 <= r["metrics"]["latency_ms"] <= 200 and r["feasible"] for r in rows)
    assert set(result.ranks) == {r["arch"] for r in rows}
    metrics = {r["arch"]: r["metrics"] for r in rows}
    by_rank = {}
    for arch, rank in result.ranks.items():
        by_rank.setdefault(rank, []).append(metrics[arch])
    assert min(by_rank) == 1 and sorted(by_rank) == list(range(1, len(by_rank) + 1))
    for rank, members in by_rank.items():  # each rank is non-dominated among ranks >= it, dominated by rank - 1
        assert not any(_dominates(a, b, CES_OBJECTIVES) for a in members for b in members)
        if rank > 1:
            assert all(any(_dominates(a, b, CES_OBJECTIVES) for a in by_rank[rank - 1]) for b in members)
    assert {a.to_string() for a, _ in result.pareto} == {a for a, r in result.ranks.items() if r == 1}
    accs = [m["accuracy"] for _, m in result.topk]
    assert accs == sorted(accs, reverse=True) and accs[0] == max(m["accuracy"] for m in metrics.values())
    assert len(result.topk) == 10 and json.loads(json.dumps(result.to_dict()))["ranks"] == result.ranks


def test_ces_keeps_eval_constraint_violators_ranked_last(small_space, make_target_eval):
    evaluate = make_target_eval(small_space.sample(random.Random(2)))
    problem = Problem(CES_OBJECTIVES, (Constraint("accuracy", min=0.4),))
    result = run_search(
        create_strategy("ces", small_space, problem, latency_costs, random.Random(1), population=10, iterations=5),
        evaluate,
    )
    assert len(result.history) == 60
    feasible = {r["arch"]: r["feasible"] for r in result.history}
    assert not all(feasible.values()) and any(feasible.values())
    worst_feasible = max(r for a, r in result.ranks.items() if feasible[a])
    assert all(r > worst_feasible for a, r in result.ranks.items() if not feasible[a])
    assert all(m["accuracy"] >= 0.4 for _, m in result.topk + result.pareto)


def test_ces_mutation_draws_a_uniform_other_op(small_space, costs):
    # issue 28.5: every mutation changes the op, each other op equally often whatever its list position
    s = Ces(small_space, Problem(), costs, random.Random(0), CesConfig(mutation_prob=1.0))
    layer = next(i for i, lay in enumerate(small_space.layers) if len(lay.choices) == 7)
    choices = small_space.layers[layer].choices
    start = small_space.from_indices([0] * small_space.num_layers)
    draws = [s.mutate(start).ops[layer] for _ in range(6000)]
    counts = {op: draws.count(op) for op in choices}
    assert counts[choices[0]] == 0 and len(counts) == 7
    assert all(abs(n - 1000) < 150 for op, n in counts.items() if op != choices[0]), counts  # 5 sigma
    s = Ces(small_space, Problem(), costs, random.Random(0), CesConfig(mutation_prob=0.0))
    arch = small_space.sample(random.Random(1))
    assert s.mutate(arch) == arch
    assert s.other_op(("e3k3",), "e3k3") == "e3k3"  # a layer with one op keeps it
    child = s.crossover(arch, small_space.sample(random.Random(2)))
    assert len(child) == len(arch)


def test_readme_states_scarlets_table_7_setting_and_the_ppo_deviation_beside_it():
    """Issue 28.9: the PPO -> roulette replacement was said only in nsga2.py's docstring."""
    from pathlib import Path

    from supernet.search.nsga2 import SCARLET_OBJECTIVES, Nsga2Config

    text = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    start = text.index("`--strategy nsga2` is SCARLET's")
    paragraph = text[start : text.index("`search/nsga2.py`", start)]
    c = Nsga2Config()
    for stated in (
        "Table 7",
        f"population {c.population}",
        f"{c.generations} generations",
        f"p_M {c.p_m} / p_K-M {c.p_km}",
        f"mutation ratio {c.mutation_ratio}",
        f"p_rm {c.p_rm} / p_re {c.p_re} / p_pr {c.p_pr}",
        "objective weights " + " / ".join(f"{o.weight}" for o in SCARLET_OBJECTIVES),
        "PPO controller",
        "roulette wheel",
    ):
        assert stated in paragraph, stated


def test_ces_reports_its_final_population_with_ranks_within_it(small_space, make_target_eval):
    evaluate = make_target_eval(small_space.sample(random.Random(4)))
    problem = Problem(CES_OBJECTIVES, (Constraint("latency_ms", max=60),))
    strategy = create_strategy("ces", small_space, problem, latency_costs, random.Random(0), population=8, iterations=4)
    result = run_search(strategy, evaluate)
    population = result.population_ranks
    assert population is not None and set(population) == {a.to_string() for a, _ in strategy.parents}
    assert len(population) == 8 < len(result.ranks) and set(population) <= set(result.ranks)
    metrics = {r["arch"]: r["metrics"] for r in result.history}
    members = sorted(population)
    fronts = nondominated_fronts(objective_matrix(CES_OBJECTIVES, [metrics[a] for a in members]))
    assert population == {members[i]: rank for rank, front in enumerate(fronts, 1) for i in front}
    assert json.loads(json.dumps(result.to_dict()))["population_ranks"] == population
