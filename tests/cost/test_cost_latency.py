"""Latency tables: measuring, validating, loading into the cost model, latency-window search."""

import csv
import itertools
import json
import random

import pytest

from supernet.core.errors import ConfigError, SearchError
from supernet.cost import CostTable
from supernet.cost.latency import (
    LatencyTable,
    check_window,
    reachable_values,
    with_latency,
)
from supernet.cost.timing import TimingSettings, time_module
from supernet.space import create_space
from tests.conftest import search_options

SMALL = {"preset": "fashion-mnist", "width": 0.25, "head_channels": 32, "layers_per_stage": (1, 1, 1, 1, 1, 1)}
SPACE_ARGS = [
    "--space",
    "scarlet-s1",
    "--preset",
    "fashion-mnist",
    "--width",
    "0.25",
    "--option",
    "head_channels=32",
    "--option",
    "layers_per_stage=[1,1,1,1,1,1]",
]


def run_cli(capsys, *args: str) -> tuple[int, str]:
    from supernet.cli import main

    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def space():
    return create_space("scarlet-s1", **SMALL)


def fake_table(space, identity="skip") -> LatencyTable:
    """A table with made-up, distinct latencies (no timing): op index + 1 ms per layer, id 0."""
    shapes = [
        {"in_channels": lay.in_channels, "out_channels": lay.out_channels, "stride": lay.stride} for lay in space.layers
    ]
    rows = [{op: (0.0 if op == "id" else float(j + 1)) for j, op in enumerate(lay.choices)} for lay in space.layers]
    stem, head = [dict(b) for b in space.stem], [dict(b) for b in space.head]  # what the model was
    return LatencyTable(
        space.name, identity, tuple(space.input_shape), shapes, 0.5, 0.25, rows, {}, stem=stem, head=head
    )


def test_cli_measures_every_block_tags_the_table_and_never_overwrites(tmp_path, capsys):
    out = tmp_path / "latency-cpu.json"
    args = ["latency-table", *SPACE_ARGS, "--min-run-time", "0.001", "--validate", "3", "--out", str(out)]
    code, err = run_cli(capsys, *args)
    assert code == 0, err
    data = json.loads(out.read_text())
    meta = data["meta"]
    assert (meta["device"], meta["backend"], meta["threads"], meta["batch_size"]) == ("cpu", "torch", 1, 1)
    assert {"torch", "python", "numpy"} <= set(meta["versions"]) and meta["date"]
    space = create_space("scarlet-s1", **SMALL)
    assert [sorted(row) for row in data["layers"]] == [sorted(lay.choices) for lay in space.layers]
    for lay, row in zip(space.layers, data["layers"]):
        for op, ms in row.items():
            assert (ms == 0.0) == (op == "id" and lay.keeps_shape), (op, ms)
    assert data["stem_ms"] > 0 and data["head_ms"] > 0
    check, fit = meta["validation"], meta["calibration"]
    assert check["archs"] == 3 and check["mape"] >= 0 and len(check["rows"]) == 3
    assert fit["archs"] == 10 and {r["arch"] for r in fit["rows"]}.isdisjoint(r["arch"] for r in check["rows"])
    if fit["applied"]:  # the fit is folded in: stem and head scaled, the offset kept apart
        assert data["offset_ms"] == pytest.approx(fit["offset_ms"])
    from supernet.analysis.report import build_report

    page = build_report(tmp_path).read_text()
    assert "latency table latency-cpu.json" in page and "Kendall tau" in page and "MAPE" in page
    assert "calibration archs" in page and "MAPE uncalibrated" in page
    before = out.read_bytes()
    code, err = run_cli(capsys, *args)
    assert code == 2 and "already exists" in err and len(err.splitlines()) == 1
    assert out.read_bytes() == before


def test_cell_space_is_refused_in_one_line(tmp_path, capsys):
    code, err = run_cli(
        capsys,
        "latency-table",
        "--space",
        "nas-bench-201",
        "--preset",
        "fashion-mnist",
        "--out",
        str(tmp_path / "t.json"),
    )
    assert code == 2 and "chain spaces" in err and len(err.splitlines()) == 1


def test_onnxruntime_backend_times_a_block(space):
    from supernet.ops.blocks import build_block

    block = build_block(dict(space.stem[0]))
    ms = time_module(block, tuple(space.input_shape), TimingSettings(backend="onnxruntime", min_run_time=0.01))
    assert 0 < ms < 1000


def test_table_loads_as_a_cost_metric_and_predicts_sums(tmp_path, space):
    path = tmp_path / "lat.json"
    fake_table(space).save(path)
    table = with_latency(CostTable.build(space), path, space, "skip")
    arch = space.sample(random.Random(0))
    expected = 0.75 + sum(0.0 if op == "id" else lay.choices.index(op) + 1.0 for lay, op in zip(space.layers, arch.ops))
    assert table.query(arch)["latency_ms"] == pytest.approx(expected)
    pruned = space.restrict([lay.choices[:2] for lay in space.layers])  # a pruned space reuses its parent's table
    assert with_latency(CostTable.build(pruned), path, pruned, "skip").query(pruned.sample(random.Random(1)))
    with pytest.raises(ConfigError, match="identity"):
        with_latency(CostTable.build(space, "els"), path, space, "els")
    other = create_space("scarlet-s1", **{**SMALL, "layers_per_stage": (1, 1, 1, 1, 1, 2)})
    with pytest.raises(ConfigError, match="layers"):
        with_latency(CostTable.build(other), path, other, "skip")


def test_dynamic_program_finds_exact_reachable_totals():
    values = reachable_values(1.0, [[0.0, 10.0], [0.0, 10.0, 3.0]], 0.001)
    assert sorted(round(v, 6) for v in values) == [1.0, 4.0, 11.0, 14.0, 21.0]
    check_window(1.0, [[0.0, 10.0], [0.0, 10.0, 3.0]], 13.5, 14.5)  # 14 is reachable
    with pytest.raises(
        SearchError,
        match=r"achievable range is latency_ms 1\.\.21 \(the nearest below is 4, "
        r"the nearest above is 11\)",
    ):
        check_window(1.0, [[0.0, 10.0], [0.0, 10.0, 3.0]], 5.0, 10.0)


MACRO = ["--space", "nas-bench-macro", "--preset", "fashion-mnist"]


@pytest.fixture(scope="module")
def macro():
    return create_space("nas-bench-macro", preset="fashion-mnist")


@pytest.fixture(scope="module")
def accuracy_csv(tmp_path_factory, macro):
    """Every arch of the (3^8) NAS-Bench-Macro space with a made-up accuracy."""
    path = tmp_path_factory.mktemp("acc") / "acc.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "accuracy"])
        for indices in itertools.product(*[range(len(lay.choices)) for lay in macro.layers]):
            w.writerow([macro.from_indices(indices).to_string(), (hash(indices) % 1000) / 1000])
    return path


@pytest.mark.parametrize("strategy", ["random", "evolution", "ces"])
def test_window_search_returns_only_archs_inside_the_window(tmp_path, capsys, macro, accuracy_csv, strategy):
    lat = tmp_path / "lat.json"
    fake_table(macro).save(lat)  # per layer id 0 ms, e3k3 2 ms, e6k5 3 ms; stem + head 0.75 ms
    code, err = run_cli(
        capsys,
        "search",
        "--table",
        str(accuracy_csv),
        *MACRO,
        "--run-dir",
        str(tmp_path / "s"),
        "--strategy",
        strategy,
        "--latency-table",
        str(lat),
        "--min-latency",
        "8ms",
        "--max-latency",
        "12ms",
        "--set",
        search_options(strategy, 6, 2, 12),
    )
    assert code == 0, err
    out = json.loads((tmp_path / "s" / "result.json").read_text())
    table = fake_table(macro)
    assert out["history"]
    for row in out["history"]:
        predicted = table.predict(macro.parse_arch(row["arch"]))
        assert 8 <= predicted <= 12 and row["metrics"]["latency_ms"] == pytest.approx(predicted)
    if strategy == "ces":
        assert "min latency_ms" in out["problem"]


@pytest.mark.parametrize(
    ("low", "high", "message"),
    [
        ("0.1ms", "0.5ms", "achievable range is latency_ms 0.75..24.75 (the nearest above is 0.75)"),
        (
            "1ms",
            "1.5ms",
            "achievable range is latency_ms 0.75..24.75 (the nearest below is 0.75, the nearest above is 2.75)",
        ),
    ],
)
def test_impossible_window_fails_fast_with_the_achievable_range(
    tmp_path, capsys, macro, accuracy_csv, low, high, message
):
    lat = tmp_path / "lat.json"
    fake_table(macro).save(lat)
    code, err = run_cli(
        capsys,
        "search",
        "--table",
        str(accuracy_csv),
        *MACRO,
        "--run-dir",
        str(tmp_path / "s"),
        "--latency-table",
        str(lat),
        "--min-latency",
        low,
        "--max-latency",
        high,
    )
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "s" / "journal.sqlite").exists()


def test_latency_bound_without_a_table_is_a_one_line_error(tmp_path, capsys, accuracy_csv):
    code, err = run_cli(
        capsys, "search", "--table", str(accuracy_csv), *MACRO, "--run-dir", str(tmp_path / "s"), "--max-latency", "3ms"
    )
    assert code == 2 and "--latency-table" in err and len(err.splitlines()) == 1


# -- calibration (measured = scale * predicted + offset, folded into the table) ---------------------------------
def synthetic_model_timer(table: LatencyTable, scale: float = 1.3, offset: float = 0.4, outlier=None):
    """Whole models that take `scale` x the table's sum + `offset` (no timing); `outlier` arch: 10x."""
    return lambda arch: (10.0 if arch == outlier else 1.0) * (scale * table.predict(arch) + offset)


def test_calibration_recovers_a_synthetic_line_and_validation_mape_goes_to_zero(space):
    from supernet.cost.latency import calibrate_latency_table, validate_latency_table

    raw = fake_table(space)
    measure = synthetic_model_timer(raw)
    uncalibrated = validate_latency_table(fake_table(space), space, TimingSettings(), 12, measure=measure)
    assert uncalibrated["mape"] > 0.2
    table = calibrate_latency_table(raw, space, measure, count=10, seed=0)
    fit = table.meta["calibration"]
    assert fit["applied"] and fit["archs"] == 10 and len(fit["rows"]) == 10
    assert fit["scale"] == pytest.approx(1.3) and fit["offset_ms"] == pytest.approx(0.4)
    assert fit["mape_before"] > 0.2 and fit["mape_after"] == pytest.approx(0.0, abs=1e-9)
    assert raw.offset_ms == 0.0 and "calibration" not in raw.meta  # the input table is a value, left as it was
    check = validate_latency_table(table, space, TimingSettings(), 12, measure=measure)
    assert check["mape"] == pytest.approx(0.0, abs=1e-9) and check["kendall_tau"] == pytest.approx(1.0)
    assert check["mape_uncalibrated"] == pytest.approx(uncalibrated["mape"], rel=0.5)
    calibrated_on = {row["arch"] for row in fit["rows"]}
    assert calibrated_on.isdisjoint(row["arch"] for row in check["rows"]) and len(check["rows"]) == 12


def test_calibration_is_robust_to_one_outlier(space):
    from supernet.cost.latency import calibrate_latency_table, spread_sample

    raw = fake_table(space)
    outlier = spread_sample(raw, space, 10, random.Random("latency-calibration:0"))[4]
    table = calibrate_latency_table(raw, space, synthetic_model_timer(raw, outlier=outlier), count=10)
    assert table.meta["calibration"]["scale"] == pytest.approx(1.3, rel=0.05)


def test_calibrated_predictions_stay_a_sum_of_entries_and_survive_a_round_trip(tmp_path, space):
    from supernet.cost.latency import calibrate_latency_table

    raw = fake_table(space)
    table = calibrate_latency_table(raw, space, synthetic_model_timer(raw), count=10)
    assert table.fixed_ms == pytest.approx(1.3 * 0.75 + 0.4) and table.offset_ms == pytest.approx(0.4)
    path = tmp_path / "lat.json"
    table.save(path)
    loaded = LatencyTable.load(path)
    costs = with_latency(CostTable.build(space), path, space, "skip")
    rng = random.Random(5)
    for _ in range(20):
        arch = space.sample(rng)
        total = loaded.fixed_ms + sum(row[op] for row, op in zip(loaded.layers, arch.ops))
        assert total == pytest.approx(1.3 * raw.predict(arch) + 0.4)
        assert loaded.predict(arch) == pytest.approx(total) and costs.query(arch)["latency_ms"] == pytest.approx(total)
    assert costs.fixed("latency_ms") == pytest.approx(loaded.fixed_ms)  # the window's dynamic program sees it


def test_a_table_written_before_calibration_loads_with_offset_zero(tmp_path, space):
    data = fake_table(space).to_dict()
    del data["offset_ms"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    table = LatencyTable.load(path)
    assert table.offset_ms == 0.0 and table.fixed_ms == pytest.approx(0.75)
    arch = space.sample(random.Random(2))
    assert with_latency(CostTable.build(space), path, space, "skip").query(arch)["latency_ms"] == pytest.approx(
        fake_table(space).predict(arch)
    )
    data["offset_ms"] = "NaN"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="malformed latency table"):
        LatencyTable.load(path)


def test_a_fit_without_positive_scale_is_recorded_not_applied(space):
    from supernet.cost.latency import calibrate_latency_table

    raw = fake_table(space)
    table = calibrate_latency_table(raw, space, lambda arch: 100.0 - raw.predict(arch), count=6)
    assert not table.meta["calibration"]["applied"] and table.meta["calibration"]["scale"] < 0
    assert table.layers == raw.layers and table.fixed_ms == raw.fixed_ms


@pytest.mark.parametrize("count", ["1", "-2"])
def test_bad_calibrate_count_is_one_line_exit_2(tmp_path, capsys, count):
    out = tmp_path / "t.json"
    code, err = run_cli(capsys, "latency-table", *SPACE_ARGS, "--calibrate", count, "--out", str(out))
    assert code == 2 and "--calibrate must be 0 (off) or at least 2" in err and len(err.splitlines()) == 1
    assert not out.exists()


# -- issue 23: hostile tables ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [1e308, 1e7])
def test_huge_entries_are_refused_on_load(tmp_path, space, value):
    data = fake_table(space).to_dict()
    data["layers"][0]["e3k3"] = value
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"layers\[0\]\['e3k3'\].*within \+-1e\+06 ms"):
        LatencyTable.load(path)


def test_window_program_stays_small_over_a_huge_range():
    values = reachable_values(0.0, [[0.0, 1e6]] * 20 + [[0.0, 0.5]])
    assert values[0] == 0.0 and values[-1] == pytest.approx(2e7 + 0.5) and len(values) < 1e6


def test_an_offset_that_makes_an_arch_non_positive_is_refused(tmp_path, space):
    data = fake_table(space).to_dict()
    data["offset_ms"] = -100.0
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="offset_ms -100 makes the cheapest arch's predicted latency"):
        LatencyTable.load(path)


def test_a_table_of_another_head_or_stem_stride_is_refused(tmp_path, space):
    path = tmp_path / "t.json"
    fake_table(space).save(path)
    other = create_space("scarlet-s1", **{**SMALL, "head_channels": 64})
    with pytest.raises(ConfigError, match="another head"):
        with_latency(CostTable.build(other), path, other, "skip")
