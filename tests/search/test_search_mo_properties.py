"""Property tests for nsga2 and ces: every returned arch satisfies every hard constraint."""

import itertools
import random
import time
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supernet.core.errors import SearchError
from supernet.search import CES_OBJECTIVES, SCARLET_OBJECTIVES, Constraint, Problem, create_strategy, run_search
from supernet.space import Arch, LayerSpec, SearchSpace

CONFIGS = {
    "nsga2": {"population": 6, "generations": 3, "max_rounds": 3, "max_draws": 2000},
    "ces": {"population": 6, "iterations": 3, "max_draws": 2000},
}


@st.composite
def cases(draw):
    """A space of 1-4 layers with 1-4 ops, additive integer macs/params/latency per op, a
    random cheap constraint on macs (nsga2) or latency (ces), and an accuracy bound."""
    layers, op_costs = [], {}
    for i in range(draw(st.integers(1, 4))):
        names = tuple(f"l{i}o{j}" for j in range(draw(st.integers(1, 4))))
        for n in names:
            op_costs[n] = draw(st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50)))
        layers.append(LayerSpec(8, 8, 1, names))
    space = SearchSpace("toy", (1, 8, 8), 2, (), tuple(layers), ())
    bounds = draw(st.tuples(st.integers(-5, 210), st.integers(-5, 210)).map(sorted))
    use_min = draw(st.booleans())
    acc = draw(st.sampled_from([None, 0.0, 0.3, 0.7, 0.95, 1.0]))
    return space, op_costs, bounds[0] if use_min else None, bounds[1], acc


def _setup(name, case):
    space, op_costs, low, high, acc = case
    metric = "macs" if name == "nsga2" else "latency_ms"

    def costs(arch):
        macs, params, lat = (sum(op_costs[o][k] for o in arch) for k in range(3))
        return {"macs": float(macs), "params": float(params), "latency_ms": float(lat)}

    def evaluate(arch):
        return {"accuracy": zlib.crc32(arch.to_string().encode()) % 1000 / 1000}

    cheap = Constraint(metric, low, high)
    if name == "nsga2":
        problem, config = Problem(SCARLET_OBJECTIVES, (cheap,)), {"acc_min": acc}
        acc_ok = lambda a: acc is None or evaluate(a)["accuracy"] > acc  # noqa: E731
    else:
        extra = () if acc is None else (Constraint("accuracy", min=acc),)
        problem, config = Problem(CES_OBJECTIVES, (cheap, *extra)), {}
        acc_ok = lambda a: acc is None or evaluate(a)["accuracy"] >= acc  # noqa: E731
    archs = [Arch(ops) for ops in itertools.product(*(layer.choices for layer in space.layers))]
    feasible = {a for a in archs if cheap.satisfied(costs(a)[metric]) and acc_ok(a)}
    return space, costs, evaluate, problem, config, feasible, acc


@pytest.mark.parametrize("name", sorted(CONFIGS))
@settings(max_examples=60, deadline=None)
@given(case=cases(), seed=st.integers(0, 2**16))
def test_every_returned_arch_satisfies_constraints(name, case, seed):
    space, costs, evaluate, problem, config, feasible, acc = _setup(name, case)
    strategy = create_strategy(name, space, problem, costs, random.Random(seed), **config, **CONFIGS[name])
    start = time.perf_counter()
    if not feasible:
        with pytest.raises(SearchError):
            run_search(strategy, evaluate)
        assert time.perf_counter() - start < 2.0
        return
    try:
        result = run_search(strategy, evaluate)
    except SearchError as e:  # random sampling may miss a rare accurate arch; only accuracy may fail
        assert acc is not None and "accuracy" in str(e)
        return
    returned = [result.best] + [a for a, _ in result.topk] + [a for a, _ in result.pareto]
    assert all(a in feasible for a in returned)
    assert all(problem.check_cheap(costs(a)) for a in map(space.parse_arch, (r["arch"] for r in result.history)))
    assert set(result.ranks) == {r["arch"] for r in result.history}
    assert all(result.ranks[a.to_string()] == 1 for a, _ in result.pareto)
