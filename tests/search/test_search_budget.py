"""Sampling under a tight MACs budget: proposals from the MACs dynamic program, not blind redraws."""

import random
from collections import Counter

import pytest

from supernet.cost import CostTable
from supernet.errors import SearchError
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
