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


def _withheld_case():
    space = create_space("nas-bench-macro", width=0.125, resolution=16)
    stored, deep, withheld = (space.parse_arch(s) for s in ("12002001", "12121212", "22222222"))
    entry = lambda acc: BenchmarkEntry((acc,), acc, 0, 0)  # noqa: E731
    bench = Benchmark("nas-bench-macro", "f.json", {stored: entry(0.9), deep: entry(0.95)}, 0)
    return space, BenchmarkEvaluator(bench, space), stored, deep, withheld


def test_taus_leave_out_and_count_a_network_the_benchmark_withholds():
    """The shared NAS-Bench-Macro copy withholds 50 networks; a search that evaluated one ended the study in a
    SearchError after hours of searching."""
    space, lookup, stored, deep, withheld = _withheld_case()
    taus = _script().depth_taus({stored: 0.5, deep: 0.6, withheld: 0.9}, lookup)
    assert taus["archs"] == 2 and taus["withheld"] == 1 and taus["kendall"] == 1.0


def test_a_withheld_pick_gives_way_to_the_next_best_scored_arch_the_benchmark_holds():
    space, lookup, stored, deep, withheld = _withheld_case()
    text = lambda a: space.format_arch(a)  # noqa: E731
    result = {"best": text(withheld), "topk": [{"arch": text(a)} for a in (withheld, deep, stored)]}
    row = _script().search_row(result, space, lookup, 100.0, 10**9)
    assert row["arch"] == text(deep) and row["skipped"] == 1 and row["search"] == 95.0


def test_the_top_of_a_budget_holds_its_best_archs_the_deepest_pick_and_the_search_picks_once():
    space, lookup, stored, deep, withheld = _withheld_case()
    shallow = space.parse_arch("10000000")
    lookup.bench.entries[shallow] = BenchmarkEntry((0.5,), 0.5, 0, 0)
    lookup = BenchmarkEvaluator(lookup.bench, space)
    archs, macs = [stored, deep, shallow], {stored: 2, deep: 3, shallow: 1}
    text = lambda a: space.format_arch(a)  # noqa: E731
    result = {"topk": [{"arch": text(a)} for a in (withheld, shallow, stored)]}
    cand, deepest = _script().top_candidates(result, space, lookup, archs, macs, budget=2, k=1)
    assert deepest == stored and cand == [stored, shallow]  # deep is over budget; the withheld pick is dropped


def test_one_run_picks_judge_each_runs_favourite_and_the_deepest_on_the_other_runs():
    space = create_space("nas-bench-macro", width=0.125, resolution=16)
    deep, lucky, steady = (space.parse_arch(s) for s in ("11111111", "11000000", "11110000"))
    runs = {deep: (0.90, 0.92, 0.91), lucky: (0.95, 0.80, 0.80), steady: (0.93, 0.93, 0.93)}
    entries = {a: BenchmarkEntry(r, sum(r) / 3, 0, 0) for a, r in runs.items()}
    bench = Benchmark("nas-bench-macro", "f.json", entries, 0)
    macs = {deep: 3, lucky: 1, steady: 2}
    out = _script().one_run_picks(bench, list(runs), macs, budget=3)
    # run 1 puts `lucky` first; on runs 2 and 3 it is 13 points below `steady`, the deepest pick 1.5 below
    assert out[0]["run"] == 1 and abs(out[0]["pick"] - 13.0) < 1e-9 and abs(out[0]["deepest"] - 1.5) < 1e-9
    assert out[1]["pick"] == 0.0 and abs(out[1]["deepest"] - 2.5) < 1e-9  # run 2 puts `steady` first
    assert _script().one_run_picks(bench, list(runs), macs, budget=2)[0]["deepest"] == 0.0  # steady is deepest
