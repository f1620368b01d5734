"""Command-line refusals of issue 29.9: checked before work, one line, nothing left behind or overwritten."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from supernet.core.errors import ConfigError
from supernet.cost.latency import LatencyTable, build_latency_table
from supernet.cost.timing import TimingSettings
from tests.conftest import assert_one_line_error, needs_fashion, run_main, set_args, tiny_overrides
from tests.core.test_export_onnx import write_supernet
from tests.search.test_search_cli import SPACE, table  # noqa: F401 (the table fixture)

SMALL = ("--set", "search.options={population: 4, iterations: 1}", "--set", "search.progress=false")


def search(table_csv: Path, run_dir: Path, *args: str):
    return run_main("search", "--table", str(table_csv), *SPACE, "--run-dir", str(run_dir), *SMALL, *args)


def test_search_resume_with_another_strategy_is_refused(tmp_path, table):  # noqa: F811
    path, _, _ = table
    assert search(path, tmp_path / "s").returncode == 0  # evolution
    kept = (tmp_path / "s" / "result.json").read_bytes()
    r = search(path, tmp_path / "s", "--resume", "--strategy", "random", "--set", "search.options={num_samples: 8}")
    assert_one_line_error(r, "cannot resume", "other strategy (evolution -> random)")
    assert (tmp_path / "s" / "result.json").read_bytes() == kept
    assert search(path, tmp_path / "s", "--resume").returncode == 0


def test_search_resume_on_a_missing_folder_is_refused(tmp_path, table):  # noqa: F811
    path, _, _ = table
    r = search(path, tmp_path / "nothing", "--resume")
    assert_one_line_error(r, "--resume", "holds no search journal")
    assert not (tmp_path / "nothing").exists()


def test_a_run_without_config_yaml_says_its_settings_are_the_defaults(tmp_path, tiny_space):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    write_supernet(tmp_path / "run", tiny_space)
    bad = ("--set", "search.min_acc=5")  # refused right after the config is read: no search runs
    r = run_main("search", "--supernet", str(tmp_path / "run"), "--run-dir", str(tmp_path / "s"), *bad)
    assert r.returncode == 2 and "search.min_acc" in r.stderr
    assert f"note: {tmp_path / 'run' / 'config.yaml'} is missing" in r.stderr and "defaults" in r.stderr


def test_an_accuracy_bar_on_a_loss_score_is_refused_before_the_search(tmp_path, tiny_space):
    """With eval.metric=loss the score is exp(-loss) (~0.3), so --min-acc 0.5 made every arch infeasible:
    the search ran its 1,000 evaluations for nothing and ended on "no feasible arch"."""
    from supernet.config.schema import load_config, save_config

    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    write_supernet(tmp_path / "run", tiny_space)
    save_config(load_config(None, ["eval.metric=loss"]), tmp_path / "run" / "config.yaml")  # as the macro config
    sets = ("--min-acc", "0.5")
    r = run_main("search", "--supernet", str(tmp_path / "run"), "--run-dir", str(tmp_path / "s"), *sets)
    assert_one_line_error(r, "search.min_acc (0.5) is an accuracy, but eval.metric is loss", "drop the bar")
    assert not (tmp_path / "s").exists()


def test_the_pipeline_refuses_an_accuracy_bar_on_a_loss_score_before_training(tmp_path):
    sets = ("--set", "search.min_acc=0.5", "--set", "eval.metric=loss")
    r = run_main("pipeline", "--run-dir", str(tmp_path / "run"), *sets)
    assert_one_line_error(r, "search.min_acc (0.5) is an accuracy")
    assert not (tmp_path / "run").exists()


@needs_fashion
@pytest.mark.parametrize(
    "sets, expected",
    [
        (["train.distill=true"], "train.distill needs train.sampler=sandwich"),
        (["train.few_shot_layers=[1]", "supernet.interchoice=bias"], "needs supernet.interchoice=none"),
    ],
)
def test_train_refusals_leave_no_empty_run_dir(tmp_path, sets, expected):
    r = run_main("train", "--run-dir", str(tmp_path / "run"), *set_args(tiny_overrides()), *set_args(sets))
    assert_one_line_error(r, expected)
    assert not (tmp_path / "run").exists()


def test_a_refusal_keeps_a_run_dir_the_user_made(tmp_path):
    (tmp_path / "run").mkdir()
    r = run_main("train", "--run-dir", str(tmp_path / "run"), "--set", "train.sampler=nope")
    assert r.returncode == 2 and (tmp_path / "run").is_dir()


def test_export_refuses_to_overwrite_a_model_unless_forced(tmp_path, tiny_space):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    write_supernet(tmp_path / "run", tiny_space)
    archs = [tiny_space.sample(random.Random(seed)).to_string() for seed in (1, 2)]
    export = ("export", "--supernet", str(tmp_path / "run"), "--out", str(tmp_path / "e"), "--arch")
    assert run_main(*export, archs[0]).returncode == 0
    kept = (tmp_path / "e" / "model.json").read_bytes()
    assert_one_line_error(run_main(*export, archs[1]), "already holds an exported model.json", "--force")
    assert (tmp_path / "e" / "model.json").read_bytes() == kept
    assert run_main(*export, archs[1], "--force").returncode == 0
    assert json.loads((tmp_path / "e" / "model.json").read_text())["arch"] == archs[1]


def write_table(space, path: Path, monkeypatch) -> Path:
    """A latency table of `space` (every block timed as 1 ms: no timing here)."""
    monkeypatch.setattr("supernet.cost.latency.time_module", lambda module, shape, settings: 1.0)
    build_latency_table(space, "skip", TimingSettings()).save(path)
    return path


@pytest.fixture
def latency_table(tmp_path, tiny_space, monkeypatch) -> Path:
    return write_table(tiny_space, tmp_path / "latency.json", monkeypatch)


def test_a_latency_table_with_a_key_given_twice_is_refused(latency_table):
    text = latency_table.read_text()
    latency_table.write_text(text.replace("{", '{"stem_ms": 0.001, ', 1))
    with pytest.raises(ConfigError, match="'stem_ms' is given twice"):
        LatencyTable.load(latency_table)


def test_a_latency_table_of_another_space_name_is_refused(latency_table, tiny_space):
    LatencyTable.load(latency_table).check_fits(tiny_space, "skip")  # its own space fits
    data = json.loads(latency_table.read_text())
    latency_table.write_text(json.dumps({**data, "space": "fbnet"}))
    with pytest.raises(ConfigError, match="latency table for space 'fbnet' cannot time space 'scarlet-s1'"):
        LatencyTable.load(latency_table).check_fits(tiny_space, "skip")


def test_an_inverted_latency_window_names_the_bounds_in_order(tmp_path, table, monkeypatch):  # noqa: F811
    path, space, _ = table
    latency_table = write_table(space, tmp_path / "latency.json", monkeypatch)
    r = search(
        path, tmp_path / "s", "--latency-table", str(latency_table), "--min-latency", "12ms", "--max-latency", "10ms"
    )
    assert_one_line_error(r, "--min-latency 12 ms is above --max-latency 10 ms")
    assert not (tmp_path / "s").exists()


# issue 29.10: a latency table for the supernet one trained


def test_latency_table_for_a_supernet_run_times_its_exact_space(tmp_path, tiny_space, monkeypatch):
    monkeypatch.setattr("supernet.cost.latency.time_module", lambda module, shape, settings: 1.0)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    write_supernet(tmp_path / "run", tiny_space, identity="els")  # stem_stride 2, width 0.25: not the defaults
    out = tmp_path / "latency.json"
    r = run_main("latency-table", "--supernet", str(tmp_path / "run"), "--calibrate", "0", "--out", str(out))
    assert r.returncode == 0, r.stderr
    timed = LatencyTable.load(out)
    timed.check_fits(tiny_space, "els")  # what `search --supernet RUN --latency-table` checks
    assert timed.identity == "els" and len(timed.layers) == tiny_space.num_layers


@needs_fashion
def test_latency_table_for_a_config_times_the_space_it_trains(tmp_path, monkeypatch):
    from supernet.config.schema import load_config, save_config
    from supernet.runs.build import build_space, load_data

    monkeypatch.setattr("supernet.cost.latency.time_module", lambda module, shape, settings: 1.0)
    cfg = load_config(None, tiny_overrides())
    save_config(cfg, tmp_path / "c.yaml")
    out = tmp_path / "latency.json"
    r = run_main("latency-table", "--config", str(tmp_path / "c.yaml"), "--calibrate", "0", "--out", str(out))
    assert r.returncode == 0, r.stderr
    LatencyTable.load(out).check_fits(build_space(cfg, load_data(cfg)), cfg.supernet.identity)


@pytest.mark.parametrize(
    "args, said",
    [
        (["--space", "scarlet-s1"], "give exactly one of --space NAME, --supernet RUN or --config C"),
        (["--stem-stride", "2"], "--supernet fixes the space; drop --stem-stride"),
        (["--identity", "skip"], "--supernet uses identity 'els'; drop --identity"),
    ],
)
def test_latency_table_for_a_supernet_refuses_space_options(tmp_path, tiny_space, args, said):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    write_supernet(tmp_path / "run", tiny_space, identity="els")
    out = tmp_path / "latency.json"
    r = run_main("latency-table", "--supernet", str(tmp_path / "run"), *args, "--out", str(out))
    assert_one_line_error(r, said)
    assert not out.exists()
