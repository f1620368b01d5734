"""benchmarks/search_regret.py: the taus over the searched archs look up strings the benchmark file lacks
through their network (issue 31.4: a KeyError ended the study after its first budget)."""

import importlib.util

from supernet.analysis.benchmark import Benchmark, BenchmarkEntry, BenchmarkEvaluator
from supernet.space import create_space
from tests.conftest import REPO


def _script():
    spec = importlib.util.spec_from_file_location("search_regret", REPO / "benchmarks" / "search_regret.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_taus_look_up_a_spelling_the_benchmark_lacks_through_its_network():
    space = create_space("nas-bench-macro", width=0.125, resolution=16)
    stored, deep, moved = (space.parse_arch(s) for s in ("12002001", "12121212", "12020010"))
    assert space.canonical(moved) == space.canonical(stored) and moved != stored
    entry = lambda acc: BenchmarkEntry((acc,), acc, 0, 0)  # noqa: E731
    bench = Benchmark("nas-bench-macro", "f.json", {stored: entry(0.9), deep: entry(0.95)}, 0)
    taus = _script().depth_taus({moved: 0.5, deep: 0.6}, BenchmarkEvaluator(bench, space))
    assert taus["archs"] == 2 and taus["kendall"] == 1.0
