"""NAS-Bench-Macro as ground truth: the reader (untrusted file), stratified sampling, the reference
numbers (ceiling, zero-cost bars), the cost-model check, and `rank`/`search` from the CLI."""

import csv
import json
import logging
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from supernet.analysis import metrics as M
from supernet.analysis.benchmark import (
    BenchmarkEvaluator,
    BenchmarkSpec,
    canonical,
    cost_mismatches,
    load_benchmark,
    reference,
    run_consistency,
    stratified_sample,
    zero_cost,
)
from supernet.core.errors import ConfigError
from supernet.space import create_space
from tests.conftest import needs_fashion, run_cli, run_main, set_args, shared_path, tiny_overrides

REAL = shared_path("data", "nas-bench-macro", "nas-bench-macro_cifar10.json")
needs_real = pytest.mark.skipif(not REAL.is_file(), reason="NAS-Bench-Macro file not installed")


@pytest.fixture(scope="module")
def space():
    return create_space("nas-bench-macro", preset="cifar10")


def entry(acc: float, runs=None, params: int = 1000, flops: int = 2000) -> dict:
    runs = runs if runs is not None else [acc - 0.1, acc, acc + 0.1]
    return {"test_acc": runs, "mean_acc": acc, "std": 0.1, "params": params, "flops": flops}


def hand_made(n: int = 12) -> dict:
    """n archs whose accuracy rises with their MACs; run 3 reverses the order of runs 1 and 2."""
    archs = [np.base_repr(i, 3).zfill(8) for i in range(n)]
    return {
        a: entry(50 + i, runs=[50 + i, 50 + i, 90 - i], params=(i % 3) * 10 + 1, flops=1000 + i)
        for i, a in enumerate(archs)
    }


def write(tmp_path: Path, data, name: str = "bench.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_reader_converts_percent_and_keeps_all_archs(tmp_path, space):
    bench = load_benchmark("nas-bench-macro", write(tmp_path, hand_made()), space)
    assert len(bench.entries) == 12 and bench.num_runs == 3
    arch = space.parse_arch("00000001")
    assert bench.entries[arch].mean == pytest.approx(0.51)
    assert bench.entries[arch].runs == pytest.approx((0.51, 0.51, 0.89))


@pytest.mark.parametrize(
    "data, message",
    [
        ("{not json", "not valid JSON"),
        ("[]", "non-empty JSON object"),
        ({"00000000": {"test_acc": [1, 2, 3], "mean_acc": 2, "params": 1}}, "missing key 'flops'"),
        ({"00000003": entry(50)}, "unknown arch '00000003'"),
        ({"0000000": entry(50)}, "unknown arch '0000000'"),
        ({"e3k3": entry(50)}, "unknown arch 'e3k3'"),
        ('{"00000000": {"test_acc": [NaN, 1, 2], "mean_acc": 1, "params": 1, "flops": 1}}', "NaN is not a number"),
        ({"00000000": entry(50, runs=[50, "x", 50])}, "'test_acc' must be a finite number"),
        ({"00000000": entry(50, runs=50)}, "'test_acc' must be a non-empty list"),
        ({"00000000": entry(150)}, "outside [0, 100]"),
        ({"00000000": entry(50, params=-3)}, "'params' must be a non-negative integer"),
        ({"00000000": entry(50), "00000001": entry(50, runs=[50, 50])}, "different numbers of runs"),
    ],
)
def test_bad_files_are_one_line_config_errors(tmp_path, space, data, message):
    with pytest.raises(ConfigError) as info:
        load_benchmark("nas-bench-macro", write(tmp_path, data), space)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_duplicated_arch_is_refused_naming_it(tmp_path, space):
    """Issue 23.13: a second "00000001" entry (accuracy 2.0) was silently last-wins (ranked with 0.02)."""
    first, second = json.dumps(entry(64.22)), json.dumps(entry(2.0))
    text = f'{{"00000000": {json.dumps(entry(50))}, "00000001": {first}, "00000001": {second}}}'
    with pytest.raises(ConfigError) as info:
        load_benchmark("nas-bench-macro", write(tmp_path, text), space)
    assert "duplicate key '00000001'" in str(info.value) and "\n" not in str(info.value)
    doubled_field = '{"00000000": {"test_acc": [50], "mean_acc": 50, "mean_acc": 2, "params": 1, "flops": 1}}'
    with pytest.raises(ConfigError, match="duplicate key 'mean_acc'"):
        load_benchmark("nas-bench-macro", write(tmp_path, doubled_field), space)


def test_wrong_benchmark_or_space_is_refused(tmp_path, space):
    path = write(tmp_path, hand_made())
    with pytest.raises(ConfigError, match="unknown benchmark"):
        load_benchmark("nas-bench-201", path, space)
    with pytest.raises(ConfigError, match="defined on space 'nas-bench-macro'"):
        load_benchmark("nas-bench-macro", path, create_space("scarlet-s1", preset="fashion-mnist"))
    with pytest.raises(ConfigError, match="cannot read benchmark"):
        load_benchmark("nas-bench-macro", tmp_path / "missing.json", space)


def test_stratified_sample_is_seeded_and_spans_the_accuracy_range(tmp_path, space):
    bench = load_benchmark("nas-bench-macro", write(tmp_path, hand_made(12)), space)
    first = stratified_sample(bench, 4, seed=3)
    assert first == stratified_sample(bench, 4, seed=3)
    assert any(stratified_sample(bench, 4, seed=s) != first for s in range(4, 10))
    ordered = sorted(bench.entries, key=lambda a: bench.entries[a].mean)
    for stratum, arch in enumerate(first):  # one arch from each third of the sorted list
        assert 3 * stratum <= ordered.index(arch) < 3 * (stratum + 1)
    with pytest.raises(ConfigError, match="--sample must be in 1..12"):
        stratified_sample(bench, 13)


def test_ceiling_and_zero_cost_bars(tmp_path, space):
    bench = load_benchmark("nas-bench-macro", write(tmp_path, hand_made(12)), space)
    archs = list(bench.entries)
    ceiling = run_consistency(bench, archs)
    assert ceiling["1v2"] == pytest.approx(1.0) and ceiling["1v3"] == pytest.approx(-1.0)
    assert ceiling["mean"] == pytest.approx(-1 / 3)
    bars = zero_cost(bench, archs)
    assert bars["macs"] == pytest.approx(1.0)  # flops rise with accuracy
    params = [bench.entries[a].params for a in archs]
    assert bars["params"] == pytest.approx(M.kendall_tau(params, bench.accuracy(archs)))
    depths = [sum(op != "id" for op in a.ops) for a in archs]
    assert bars["depth"] == pytest.approx(M.kendall_tau(depths, bench.accuracy(archs)))
    assert set(reference(bench, archs)) == {"benchmark", "benchmark_file", "ceiling_kendall", "zero_cost_kendall"}


def test_cost_mismatches_are_reported(tmp_path, space):
    from supernet.cost import CostTable

    table = CostTable.build(space)
    archs = ["00000000", "12012012", "22222222"]
    data = {
        a: entry(
            60, params=int(table.query(space.parse_arch(a)).params), flops=int(table.query(space.parse_arch(a)).macs)
        )
        for a in archs
    }
    data["22222222"]["flops"] += 1
    bench = load_benchmark("nas-bench-macro", write(tmp_path, data), space)
    assert [m["arch"] for m in cost_mismatches(bench, space)] == ["22222222"]


@needs_real
def test_cost_model_matches_the_published_file_on_a_few_archs(space):
    bench = load_benchmark("nas-bench-macro", REAL, space)
    archs = stratified_sample(bench, 8, seed=0)
    assert cost_mismatches(bench, space, archs) == []


def test_canonical_form_moves_identities_to_the_stage_end(space):
    assert canonical(space.parse_arch("10201201"), space) == space.parse_arch("10210210")
    assert canonical(space.parse_arch("00000000"), space) == space.parse_arch("00000000")


def test_benchmark_evaluator_finds_an_equivalent_arch(tmp_path, space):
    bench = load_benchmark("nas-bench-macro", write(tmp_path, {"00000010": entry(70)}), space)
    evaluator = BenchmarkEvaluator(bench, space)
    assert evaluator.evaluate(space.parse_arch("00000001")) == pytest.approx(0.70)  # id moved to the stage end
    with pytest.raises(Exception, match="not in benchmark"):
        evaluator.evaluate(space.parse_arch("22222222"))


def test_spec_needs_exactly_one_arch_list(tmp_path, space):
    bench = load_benchmark("nas-bench-macro", write(tmp_path, hand_made()), space)
    with pytest.raises(ConfigError, match="exactly one of --sample"):
        BenchmarkSpec("nas-bench-macro", "x").archs(bench, space)
    (tmp_path / "archs.txt").write_text("22222222\n")
    with pytest.raises(ConfigError, match="not in benchmark"):
        BenchmarkSpec("nas-bench-macro", "x", archs_file=str(tmp_path / "archs.txt")).archs(bench, space)


# -- the CLI -------------------------------------------------------------------------------------------
run = partial(run_cli, code=0)  # must succeed unless a call names another exit code


@pytest.fixture(scope="module")
def macro_supernet(tmp_path_factory):
    """A tiny nas-bench-macro supernet (fashion-mnist preset: width 0.25, 28x28 grey) trained a few steps."""
    root = tmp_path_factory.mktemp("bench")
    sets = tiny_overrides(
        train__epochs=1,
        train__max_steps_per_epoch=3,
        space__name="nas-bench-macro",
        space__options="{}",
        train__batch_size=32,
        eval__recal_batches=1,
        eval__val_batch_size=64,
        data__val_size=64,
    )
    run("train", "--run-dir", str(root / "supernet"), *set_args(sets))
    return root / "supernet"


@needs_fashion
def test_rank_with_benchmark_from_the_cli(tmp_path, macro_supernet):
    path = write(tmp_path, hand_made(12))
    r = run(
        "rank",
        "--supernet",
        str(macro_supernet),
        "--benchmark",
        "nas-bench-macro",
        "--benchmark-file",
        str(path),
        "--sample",
        "6",
        "--seed",
        "1",
        "--run-dir",
        str(tmp_path / "rank"),
    )
    assert "ceiling (benchmark run vs run Kendall tau): 1v2 1.000" in r.stdout
    assert "zero-cost bars (Kendall tau): macs-only 1.000" in r.stdout
    out = json.loads((tmp_path / "rank" / "rank.json").read_text())
    assert out["num_archs"] == 6 and out["reference"]["zero_cost_kendall"]["macs"] == pytest.approx(1.0)
    with open(tmp_path / "rank" / "predictions.csv", newline="") as f:
        rows = [row["arch"] for row in csv.DictReader(f)]
    space = create_space("nas-bench-macro", preset="cifar10")
    bench = load_benchmark("nas-bench-macro", path, space)
    assert rows == [a.to_string() for a in stratified_sample(bench, 6, 1)]


@needs_fashion
@pytest.mark.parametrize(
    "data, extra, message",
    [
        ('{"00000000": {"test_acc": [NaN, 1, 2], "mean_acc": 1, "params": 1, "flops": 1}}', ["--sample", "1"], "NaN"),
        ({"0000000x": entry(50)}, ["--sample", "1"], "unknown arch"),
        ({"00000000": {"test_acc": [1, 2, 3]}}, ["--sample", "1"], "missing key"),
        ({"00000000": entry(50)}, [], "exactly one of --sample"),
    ],
)
def test_rank_bad_benchmark_is_one_line_exit_2(tmp_path, macro_supernet, data, extra, message):
    path = write(tmp_path, data)
    r = run_main(
        "rank",
        "--supernet",
        str(macro_supernet),
        "--benchmark",
        "nas-bench-macro",
        "--benchmark-file",
        str(path),
        *extra,
        "--run-dir",
        str(tmp_path / "rank"),
        code=2,
    )
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_rank_needs_one_ground_truth(tmp_path):
    r = run_main("rank", "--supernet", "x", "--run-dir", str(tmp_path / "r"), code=2)
    assert "exactly one of --groundtruth" in r.stderr
    r = run_main(
        "rank", "--supernet", "x", "--groundtruth", "g.csv", "--sample", "3", "--run-dir", str(tmp_path), code=2
    )
    assert "go with --benchmark" in r.stderr


@needs_real
def test_search_a_benchmark_from_the_cli(tmp_path, space):
    r = run(
        "search",
        "--benchmark",
        "nas-bench-macro",
        "--benchmark-file",
        str(REAL),
        "--space",
        "nas-bench-macro",
        "--preset",
        "cifar10",
        "--strategy",
        "random",
        "--set",
        "search.options.num_samples=5",
        "--run-dir",
        str(tmp_path / "s"),
    )
    result = json.loads((tmp_path / "s" / "result.json").read_text())
    evaluator = BenchmarkEvaluator(load_benchmark("nas-bench-macro", REAL, space), space)
    assert result["best_metrics"]["accuracy"] == pytest.approx(evaluator.evaluate(space.parse_arch(result["best"])))
    assert result["benchmark"] == "nas-bench-macro" and "best" in r.stdout


# -- a pruned (restricted) space: keep the file's archs it contains ------------------------------------------
def pruned(space):
    """Layer 7 keeps id and e6k5 (its benchmark digits 0 and 2): hand_made's archs ending in 1 are outside."""
    return space.restrict([*[lay.choices for lay in space.layers[:7]], ("id", "e6k5")])


def test_pruned_space_keeps_its_archs_read_in_the_benchmarks_notation(tmp_path, space):
    small = pruned(space)
    bench = load_benchmark("nas-bench-macro", write(tmp_path, hand_made(12)), small)
    assert bench.outside == 4 and len(bench.entries) == 8
    assert all(arch.ops[7] in ("id", "e6k5") for arch in bench.entries)
    assert bench.entries[space.parse_arch("00000002")].mean == pytest.approx(0.52)  # digit 2 = e6k5, not index 2
    assert set(stratified_sample(bench, 8)) == set(bench.entries)
    with pytest.raises(ConfigError, match=r"--sample must be in 1\.\.8"):
        stratified_sample(bench, 9)
    with pytest.raises(ConfigError, match="none of its 4 archs lies in the space"):
        load_benchmark(
            "nas-bench-macro",
            write(tmp_path, {a: entry(50) for a in ["00000001", "00000011"] + ["00000021", "00000101"]}),
            small,
        )


def test_pruned_space_arch_list_outside_the_space_is_named(tmp_path, space):
    small = pruned(space)
    bench = load_benchmark("nas-bench-macro", write(tmp_path, hand_made(12)), small)
    (tmp_path / "archs.txt").write_text("00000002\n00000000\n")
    archs = BenchmarkSpec("nas-bench-macro", "x", archs_file=str(tmp_path / "archs.txt")).archs(bench, small)
    assert archs[0].ops[7] == "e6k5"
    (tmp_path / "archs.txt").write_text("00000002\n00000001\n")
    with pytest.raises(ConfigError) as info:
        BenchmarkSpec("nas-bench-macro", "x", archs_file=str(tmp_path / "archs.txt")).archs(bench, small)
    message = str(info.value)
    assert "entry 2: arch '00000001'" in message and "layer 7 has no 'e3k3' (it keeps id, e6k5)" in message
    assert "\n" not in message


def test_pruned_ground_truth_and_references_use_the_same_archs(tmp_path, space, caplog):
    from supernet.analysis.ranking import common_space, resolve_groundtruth

    small = pruned(space)
    assert common_space(space, small) == small and common_space(small, space) == small
    spec = BenchmarkSpec("nas-bench-macro", str(write(tmp_path, hand_made(12))), sample=8)
    with caplog.at_level(logging.INFO, logger="supernet"):
        truth = resolve_groundtruth(spec, small)
    assert caplog.messages == [
        f"benchmark {spec.path}: 4 of its 12 archs are outside the supernet's (pruned) space and left out; 8 remain"
    ]
    assert all(a.ops[7] != "e3k3" for a in truth.archs) and len(truth.archs) == 8
    bench = load_benchmark("nas-bench-macro", spec.path, small)
    assert truth.reference["ceiling_kendall"] == run_consistency(bench, truth.archs)
    assert truth.reference["zero_cost_kendall"] == zero_cost(bench, truth.archs)
    assert (truth.reference["archs_in_space"], truth.reference["archs_outside_space"]) == (8, 4)
    other = space.restrict([*[lay.choices for lay in space.layers[:7]], ("e3k3",)])
    with pytest.raises(ConfigError, match="share no arch: layer 7"):
        common_space(small, other)


@pytest.fixture(scope="module")
def pruned_macro_supernet(tmp_path_factory, macro_supernet):
    """The tiny nas-bench-macro supernet's config, trained a few steps on `pruned`'s choices."""
    from supernet.config.schema import load_config
    from supernet.jobs.train import train_supernet

    cfg = load_config(macro_supernet / "config.yaml")
    run_dir = tmp_path_factory.mktemp("pruned") / "supernet"
    train_supernet(cfg, run_dir, choices=[list(lay.choices) for lay in pruned(create_space("nas-bench-macro")).layers])
    return run_dir


@needs_fashion
def test_rank_a_pruned_supernet_with_benchmark_from_the_cli(tmp_path, macro_supernet, pruned_macro_supernet):
    path = write(tmp_path, hand_made(12))
    common = ["--benchmark", "nas-bench-macro", "--benchmark-file", str(path)]
    both = ["--supernet", str(macro_supernet), "--supernet", str(pruned_macro_supernet)]
    r = run("rank", *both, *common, "--sample", "8", "--run-dir", str(tmp_path / "rank"))
    assert "4 of its 12 archs are outside the supernet's (pruned) space and left out; 8 remain" in r.stderr
    out = json.loads((tmp_path / "rank" / "rank.json").read_text())
    assert out["num_archs"] == 8 and out["reference"]["archs_outside_space"] == 4
    assert out["reference"]["zero_cost_kendall"]["macs"] == pytest.approx(1.0)
    with open(tmp_path / "rank" / "predictions.csv", newline="") as f:
        assert all(row["arch"].split(",")[7] != "e3k3" for row in csv.DictReader(f))
    (tmp_path / "archs.txt").write_text("00000002\n00000001\n")
    r = run(
        "rank",
        "--supernet",
        str(pruned_macro_supernet),
        *common,
        "--archs",
        str(tmp_path / "archs.txt"),
        "--run-dir",
        str(tmp_path / "rank2"),
        code=2,
    )
    info, error = r.stderr.strip().splitlines()  # the left-out line, then the one-line error
    assert "4 of its 12 archs are outside" in info and "Traceback" not in r.stderr
    assert "arch '00000001'" in error and "outside the supernet's space: layer 7 has no 'e3k3'" in error


@needs_fashion
@pytest.mark.parametrize(
    ("extra", "named"),
    [(["--sample", "1"], "--sample 1 of benchmark nas-bench-macro"), (["--archs"], "--archs ")],
)
def test_rank_of_one_benchmark_arch_is_worded_for_a_person(tmp_path, macro_supernet, extra, named):
    """Issue 28.15: the error printed `BenchmarkSpec(name=..., path=..., ...) lists 1 archs`."""
    path = write(tmp_path, {"00000000": entry(50), "00000001": entry(60)})
    if extra == ["--archs"]:
        (tmp_path / "archs.txt").write_text("00000001\n")
        extra = ["--archs", str(tmp_path / "archs.txt")]
    r = run_main(
        "rank",
        "--supernet",
        str(macro_supernet),
        "--benchmark",
        "nas-bench-macro",
        "--benchmark-file",
        str(path),
        *extra,
        "--run-dir",
        str(tmp_path / "rank"),
        code=2,
    )
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and "BenchmarkSpec" not in line, line
    assert named in line and str(path) in line and "gives 1 arch in" in line and "at least 2" in line
