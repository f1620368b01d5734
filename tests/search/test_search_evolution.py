import random
import statistics

import pytest

from supernet.core.errors import ConfigError, SearchError
from supernet.search import (
    Constraint,
    Evolution,
    EvolutionConfig,
    Problem,
    RandomSearch,
    RandomSearchConfig,
    create_strategy,
    list_strategies,
    run_search,
)

BUDGET = Problem(constraints=(Constraint("macs", max=110e6),))


def _target(space, costs, seed=123):
    rng = random.Random(seed)
    while True:
        target = space.sample(rng)
        if BUDGET.check_cheap(costs(target)):
            return target


def test_evolution_beats_initial_population_and_random(full_space, costs, make_target_eval):
    evo_best, rand_best = [], []
    for seed in range(3):
        evaluate = make_target_eval(_target(full_space, costs, 1000 + seed))
        evo = run_search(create_strategy("evolution", full_space, BUDGET, costs, random.Random(seed)), evaluate)
        rnd = run_search(create_strategy("random", full_space, BUDGET, costs, random.Random(seed)), evaluate)
        assert len(evo.history) == len(rnd.history) == 1000  # same evaluation budget (P*T)
        initial = max(r["metrics"]["accuracy"] for r in evo.history if r["generation"] == 0)
        assert evo.best_metrics["accuracy"] >= initial + 0.3
        evo_best.append(evo.best_metrics["accuracy"])
        rand_best.append(rnd.best_metrics["accuracy"])
    assert statistics.mean(evo_best) >= statistics.mean(rand_best) + 0.25
    assert statistics.mean(evo_best) >= 0.9 and min(evo_best) >= 0.85  # 7^19 (the paper's S1): 17-19 of 19 layers


def _run(space, costs, evaluate, seed, name="evolution", **config):
    strategy = create_strategy(name, space, BUDGET, costs, random.Random(seed), **config)
    return run_search(strategy, evaluate).to_dict()


@pytest.mark.parametrize(
    "name, config", [("evolution", {"population": 10, "iterations": 4}), ("random", {"num_samples": 40})]
)
def test_same_seed_same_history(small_space, costs, make_target_eval, name, config):
    evaluate = make_target_eval(_target(small_space, costs))
    a = _run(small_space, costs, evaluate, 7, name, **config)
    b = _run(small_space, costs, evaluate, 7, name, **config)
    c = _run(small_space, costs, evaluate, 8, name, **config)
    assert a == b
    assert [r["arch"] for r in a["history"]] != [r["arch"] for r in c["history"]]


def test_population_sizes_and_operator_counts(full_space, costs, make_target_eval):
    evaluate = make_target_eval(_target(full_space, costs))
    evo = Evolution(full_space, BUDGET, costs, random.Random(1), EvolutionConfig(iterations=4))
    generations, topk = 0, []
    while not evo.done:
        batch = evo.ask()
        assert len(batch) == 50 and len(set(batch)) == 50  # duplicates rejected by default
        assert all(BUDGET.check_cheap(costs(a)) for a in batch)
        if generations == 0:
            assert evo.origins == ["random"] * 50
        else:
            assert evo.origins == ["crossover"] * 25 + ["mutation"] * 25
            for arch, origin in zip(batch, evo.origins):  # crossover child: each op from some TopK parent
                assert origin != "crossover" or all(any(p[i] == op for p in topk) for i, op in enumerate(arch))
        evo.tell([(a, evaluate(a)) for a in batch])
        topk = [a for a, _ in evo.result().topk]
        assert len(topk) == 10
        generations += 1
    assert generations == 4 and evo.ask() == []
    result = evo.result()
    accs = [m["accuracy"] for _, m in result.topk]
    assert accs == sorted(accs, reverse=True)
    assert result.best == result.topk[0][0]
    assert accs[0] == max(r["metrics"]["accuracy"] for r in result.history)
    assert [r["generation"] for r in result.history] == [g for g in range(4) for _ in range(50)]


@pytest.mark.parametrize("reject", [True, False])
def test_zero_mutation_prob_copies_parents(full_space, costs, make_target_eval, reject):
    evaluate = make_target_eval(_target(full_space, costs))
    cfg = EvolutionConfig(
        population=20,
        iterations=2,
        topk=5,
        mutation_prob=0.0,
        crossover_num=0,
        mutation_num=20,
        reject_duplicates=reject,
    )
    evo = Evolution(full_space, BUDGET, costs, random.Random(3), cfg)
    batch = evo.ask()
    evo.tell([(a, evaluate(a)) for a in batch])
    parents = {a for a, _ in evo.result().topk}
    batch = evo.ask()
    mutated = [a for a, o in zip(batch, evo.origins) if o == "mutation"]
    assert len(batch) == 20 and all(a in parents for a in mutated)
    if reject:  # copies of parents were evaluated already: rejected, the slots filled at random
        assert mutated == []
        assert evo.origins.count("random") == 20 and len(set(batch)) == 20 and not set(batch) & parents
    else:
        assert len(mutated) == 20


def test_accuracy_constraint_ranks_infeasible_last(small_space, costs, make_target_eval):
    problem = Problem(constraints=(Constraint("accuracy", max=0.5),))
    evaluate = make_target_eval(_target(small_space, costs))
    strategy = create_strategy("random", small_space, problem, costs, random.Random(0), num_samples=200)
    result = run_search(strategy, evaluate)
    flags = [problem.check_all(m) for _, m in result.topk]
    assert flags == sorted(flags, reverse=True) and flags[0]
    assert result.best_metrics["accuracy"] <= 0.5
    assert any(not r["feasible"] for r in result.history)  # kept in the history


def test_random_search_batches_and_memoised_driver(small_space, costs, make_target_eval):
    evaluate = make_target_eval(_target(small_space, costs))
    calls, seen = [], []

    def counting(arch):
        calls.append(arch)
        return evaluate(arch)

    rs = RandomSearch(small_space, BUDGET, costs, random.Random(0), RandomSearchConfig(num_samples=120, batch_size=50))
    sizes = []
    orig_ask = rs.ask
    rs.ask = lambda: sizes.append(len(orig_ask())) or orig_ask()
    pre = {}
    result = run_search(rs, counting, on_evaluated=lambda a, m: seen.append(a), cache=pre)
    assert sizes == [50, 50, 20] and len(result.history) == 120
    assert len(calls) == len(set(calls)) == len(set(pre)) and seen == calls
    # a pre-filled cache (e.g. from a journal) replays without evaluating again
    calls.clear()
    rs2 = RandomSearch(small_space, BUDGET, costs, random.Random(0), RandomSearchConfig(num_samples=120, batch_size=50))
    assert run_search(rs2, counting, cache=pre).to_dict() == result.to_dict() and calls == []


def test_tell_must_match_ask(small_space, costs):
    evo = Evolution(small_space, BUDGET, costs, random.Random(0), EvolutionConfig(population=4, iterations=2))
    batch = evo.ask()
    with pytest.raises(SearchError, match="tell"):
        evo.tell([(a, {"accuracy": 0.5}) for a in batch[:-1]])


def test_registry_and_config_errors(small_space, costs):
    assert {"random", "evolution"} <= set(list_strategies())
    with pytest.raises(ConfigError, match="known: .*evolution.*random"):
        create_strategy("anneal", small_space, BUDGET, costs, random.Random(0))
    with pytest.raises(ConfigError, match="no option 'popsize'"):
        create_strategy("evolution", small_space, BUDGET, costs, random.Random(0), popsize=3)
    with pytest.raises(ConfigError, match="exceeds population"):
        EvolutionConfig(population=10, crossover_num=6, mutation_num=5)
    with pytest.raises(ConfigError, match="mutation_prob"):
        EvolutionConfig(mutation_prob=1.5)
    with pytest.raises(ConfigError, match="population"):
        EvolutionConfig(population=0)
    cfg = EvolutionConfig(population=7)
    assert (cfg.n_crossover, cfg.n_mutation) == (3, 3)  # the odd one out is a random sample


def test_evolution_never_reevaluates_a_seen_arch(full_space, costs, make_target_eval):
    """SPOS 50 x 20 run: every one of the 1,000 evaluations is a distinct arch (official code: vis_dict)."""
    evaluate = make_target_eval(_target(full_space, costs))
    evo = Evolution(full_space, BUDGET, costs, random.Random(0), EvolutionConfig())
    asked: list = []
    while not evo.done:
        batch = evo.ask()
        asked.extend(batch)
        evo.tell([(a, evaluate(a)) for a in batch])
    assert len(asked) == 1000
    assert len(set(asked)) == 1000
