"""Property tests: results always satisfy the hard constraints; infeasible budgets fail fast."""

import itertools
import random
import time
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supernet.core.errors import SearchError
from supernet.search import Constraint, Problem, create_strategy, run_search, sample_feasible
from supernet.space import Arch, LayerSpec, SearchSpace

CONFIGS = {"evolution": {"population": 8, "iterations": 3, "topk": 3}, "random": {"num_samples": 20, "batch_size": 6}}


@st.composite
def problems(draw):
    """A space of 1-4 layers with 1-4 ops each, additive per-op macs, and a macs budget."""
    layers, op_macs = [], {}
    for i in range(draw(st.integers(1, 4))):
        names = tuple(f"l{i}o{j}" for j in range(draw(st.integers(1, 4))))
        op_macs.update({n: draw(st.integers(0, 100)) for n in names})
        layers.append(LayerSpec(8, 8, 1, names))
    space = SearchSpace("toy", (1, 8, 8), 2, (), tuple(layers), ())
    low = sum(min(op_macs[o] for o in layer.choices) for layer in layers)
    high = sum(max(op_macs[o] for o in layer.choices) for layer in layers)
    bounds = draw(st.tuples(st.integers(-10, high + 10), st.integers(-10, high + 10)).map(sorted))
    use_min = draw(st.booleans())
    constraint = Constraint("macs", min=bounds[0] if use_min else None, max=bounds[1])
    return space, op_macs, constraint, (low, high)


def _setup(case):
    space, op_macs, constraint, achievable = case
    costs = lambda arch: {"macs": float(sum(op_macs[o] for o in arch))}  # noqa: E731
    evaluate = lambda arch: {"accuracy": zlib.crc32(str(arch).encode()) % 1000 / 1000}  # noqa: E731
    feasible = [a for a in _all_archs(space) if constraint.satisfied(costs(a)["macs"])]
    return space, costs, evaluate, Problem(constraints=(constraint,)), feasible, achievable


def _all_archs(space):
    return [Arch(ops) for ops in itertools.product(*(layer.choices for layer in space.layers))]


@pytest.mark.parametrize("name", sorted(CONFIGS))
@settings(max_examples=60, deadline=None)
@given(case=problems(), seed=st.integers(0, 2**16))
def test_every_returned_arch_satisfies_constraints(name, case, seed):
    space, costs, evaluate, problem, feasible, _ = _setup(case)
    strategy = create_strategy(name, space, problem, costs, random.Random(seed), max_draws=2000, **CONFIGS[name])
    if not feasible:
        start = time.perf_counter()
        with pytest.raises(SearchError, match=r"no architecture (satisfied|can satisfy) .*macs"):
            run_search(strategy, evaluate)
        assert time.perf_counter() - start < 2.0
        return
    result = run_search(strategy, evaluate)
    (c,) = problem.constraints
    archs = [result.best] + [a for a, _ in result.topk]
    assert all(a in feasible for a in archs)
    assert all(c.satisfied(m["macs"]) for _, m in result.topk)
    assert all(c.satisfied(r["metrics"]["macs"]) and r["feasible"] for r in result.history)
    assert {r["arch"] for r in result.history} <= {a.to_string() for a in feasible}
    assert result.to_dict()["best"] == result.best.to_string()


@settings(max_examples=60, deadline=None)
@given(case=problems(), seed=st.integers(0, 2**16))
def test_known_range_fails_before_drawing(case, seed):
    space, costs, _, problem, feasible, achievable = _setup(case)
    calls = []

    def counting(arch):
        calls.append(arch)
        return costs(arch)

    if feasible:
        arch = sample_feasible(space, random.Random(seed), problem, counting, ranges={"macs": achievable})
        assert arch in feasible
    elif not problem.constraints[0].overlaps(*achievable):
        with pytest.raises(SearchError, match="achievable range is macs"):
            sample_feasible(space, random.Random(seed), problem, counting, ranges={"macs": achievable})
        assert calls == []


def test_infeasible_message_names_constraint_and_range(small_space, costs):
    problem = Problem(constraints=(Constraint("macs", max=1e6),))
    with pytest.raises(SearchError) as e:
        sample_feasible(small_space, random.Random(0), problem, costs, max_draws=100)
    msg = str(e.value)
    # the MACs dynamic program knows the achievable range without ranges given: no 100 blind draws
    assert "no architecture can satisfy macs <= 1M: the achievable range is macs" in msg
    with pytest.raises(SearchError, match=r"achievable range is macs (0|15M)..70M"):
        create_strategy("evolution", small_space, problem, costs, random.Random(0), ranges={"macs": (0, 70e6)}).ask()
