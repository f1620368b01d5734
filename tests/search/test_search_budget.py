"""Sampling under a tight MACs budget: proposals from the MACs dynamic program, not blind redraws."""

import random
from collections import Counter

import pytest

from supernet.core.errors import SearchError
from supernet.cost import CostTable
from supernet.search import Problem, constraint_from_cli
from supernet.search.objectives import Objective
from supernet.search.strategy import sample_feasible
from supernet.space import create_space


@pytest.fixture(scope="module")
def space_and_costs():
    space = create_space("scarlet-s1", preset="fashion-mnist", width=0.25, head_channels=32, stem_stride=2)
    table = CostTable.build(space)
    return space, table, lambda arch: table.query(arch).to_dict()


def problem(max_macs: float) -> Problem:
    return Problem(
        objectives=(Objective("accuracy", True),), constraints=(constraint_from_cli("macs", None, max_macs),)
    )


def test_a_budget_near_the_cheapest_arch_is_sampled_inside_it(space_and_costs):
    space, table, costs = space_and_costs
    low, high = table.macs_range()
    budget = low + (high - low) * 0.02  # a sliver of the space: blind uniform draws essentially never land here
    rng = random.Random(0)
    uniform_hits = sum(costs(space.sample(rng))["macs"] <= budget for _ in range(2000))
    assert uniform_hits == 0
    archs = [sample_feasible(space, random.Random(i), problem(budget), costs, max_draws=50) for i in range(20)]
    assert all(costs(a)["macs"] <= budget for a in archs)
    assert len(set(archs)) > 10  # not one arch over and over


def test_budget_samples_are_uniform_over_the_feasible_archs():
    space = create_space("scarlet-s1", preset="fashion-mnist", layers_per_stage=(1, 1, 1, 1, 1, 1))
    table = CostTable.build(space)

    def costs(arch):
        return table.query(arch).to_dict()

    low, high = table.macs_range()
    budget = low + (high - low) * 0.05
    feasible = [
        a
        for a in (
            space.from_indices(i)
            for i in __import__("itertools").product(*[range(len(layer.choices)) for layer in space.layers])
        )
        if costs(a)["macs"] <= budget
    ]
    assert 3 <= len(feasible) <= 200
    rng = random.Random(1)
    draws = Counter(sample_feasible(space, rng, problem(budget), costs) for _ in range(60 * len(feasible)))
    assert set(draws) == set(feasible)
    assert max(draws.values()) < 3 * min(draws.values())


def test_impossible_budget_names_the_achievable_minimum(space_and_costs):
    space, table, costs = space_and_costs
    low, _ = table.macs_range()
    with pytest.raises(SearchError, match="achievable range"):
        sample_feasible(space, random.Random(0), problem(low * 0.9), costs)


def bounded(metric: str, high: float) -> Problem:
    return Problem(objectives=(Objective("accuracy", True),), constraints=(constraint_from_cli(metric, None, high),))


def with_latency(costs):
    """A latency that adds up over layers in small floats (milliseconds), as a latency table's does."""
    return lambda arch: {**costs(arch), "latency_ms": 0.2 + costs(arch)["macs"] * 1e-7}


@pytest.mark.parametrize("metric", ["params", "latency_ms", "bitops"])
def test_tight_budgets_of_every_additive_metric_are_sampled_inside_them(space_and_costs, metric):
    """Issue 23.17: `--max-bitops`, `--max-latency` and `--max-params` budgets that can be met failed
    after 10,000 random draws; only MACs had the in-budget sampler."""
    space, table, costs = space_and_costs
    if metric == "bitops":
        space = create_space("resnet18-quant")
        table = CostTable.build(space)
        costs = lambda arch: table.query(arch).to_dict()  # noqa: E731
    if metric == "latency_ms":
        costs = with_latency(costs)
    low, high = table.range("macs" if metric == "latency_ms" else metric)
    if metric == "latency_ms":
        low, high = 0.2 + low * 1e-7, 0.2 + high * 1e-7
    budget = low + (high - low) * 0.02  # blind uniform draws essentially never land here
    assert sum(costs(space.sample(random.Random(i)))[metric] <= budget for i in range(300)) == 0
    archs = [sample_feasible(space, random.Random(i), bounded(metric, budget), costs, max_draws=200) for i in range(8)]
    assert all(costs(a)[metric] <= budget for a in archs)
    assert len(set(archs)) > 2  # not one arch over and over
