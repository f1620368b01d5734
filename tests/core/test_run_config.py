"""Issue 24: every verb that takes `--supernet RUN` starts from RUN's own config.yaml (`--config` replaces
it, `--set` overrides on top), and a search records, and on resume keeps, the evaluation settings."""

import json

import pytest
import yaml

from tests.conftest import assert_one_line_error, needs_fashion, run_main, set_args, tiny_overrides

pytestmark = needs_fashion


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("run-config") / "supernet"
    overrides = tiny_overrides(train__epochs=1, eval__recal_batches=1, eval__val_limit=64)
    r = run_main("train", "--run-dir", str(run), "--device", "cpu", *set_args(overrides))
    assert r.returncode == 0, r.stderr
    return run


def saved_eval(run_dir) -> dict:
    return yaml.safe_load((run_dir / "config.yaml").read_text())["eval"]


def kept(run_dir) -> tuple:
    """What a refused command must leave as it was: result, config and the journal's rows."""
    from supernet.search import Journal

    with Journal(run_dir / "journal.sqlite") as journal:
        rows = [(r["key"], r["arch"], r["metrics"]) for r in journal.rows()]
    return (run_dir / "result.json").read_bytes(), (run_dir / "config.yaml").read_bytes(), rows


def search(trained, run_dir, *extra: str):
    small = ("--set", "search.options={population: 4, iterations: 1}")  # also small where the run's config is not read
    return run_main("search", "--supernet", str(trained), "--run-dir", str(run_dir), "--device", "cpu", *small, *extra)


def test_search_and_retrain_start_from_the_runs_own_config(trained, tmp_path):
    r = search(trained, tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert saved_eval(tmp_path / "s")["recal_batches"] == 1 and saved_eval(tmp_path / "s")["val_limit"] == 64
    result = json.loads((tmp_path / "s" / "result.json").read_text())
    assert result["evaluation"]["recal_batches"] == 1 and result["evaluation"]["val_limit"] == 64
    arch = str(tmp_path / "s" / "result.json")
    args = ("retrain", "--supernet", str(trained), "--arch", arch, "--run-dir", str(tmp_path / "r"), "--device", "cpu")
    r = run_main(*args)
    assert r.returncode == 0, r.stderr
    assert saved_eval(tmp_path / "r")["recal_batches"] == 1 and saved_eval(tmp_path / "r")["val_limit"] == 64
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["standalone"]["epochs"] == 1


def test_set_overrides_the_runs_config_and_a_resume_with_other_settings_is_refused(trained, tmp_path):
    r = search(trained, tmp_path / "s", "--set", "eval.recal_batches=2")
    assert r.returncode == 0, r.stderr
    assert saved_eval(tmp_path / "s")["recal_batches"] == 2 and saved_eval(tmp_path / "s")["val_limit"] == 64
    assert json.loads((tmp_path / "s" / "result.json").read_text())["evaluation"]["recal_batches"] == 2
    before = kept(tmp_path / "s")
    refused = search(trained, tmp_path / "s", "--resume")  # the run's own recal_batches=1
    assert_one_line_error(refused, "cannot resume", "evaluation settings", "eval.recal_batches 2 -> 1")
    refused = search(trained, tmp_path / "s", "--resume", "--set", "eval.recal_batches=2", "--max-params", "1G")
    assert_one_line_error(refused, "cannot resume", "other constraints", "params <= 1G")
    assert kept(tmp_path / "s") == before
    again = search(trained, tmp_path / "s", "--resume", "--set", "eval.recal_batches=2")
    assert again.returncode == 0, again.stderr


def test_poisoned_evaluation_cache_rows_are_not_used(trained, tmp_path):
    """Issue 23.14: NaN accuracies in eval-cache.sqlite gave "accuracy": NaN in result.json, 5.0 was best."""
    import sqlite3

    assert search(trained, tmp_path / "first").returncode == 0
    cache = trained / "checkpoints" / "eval-cache.sqlite"
    with sqlite3.connect(cache) as conn:
        archs = [row[0] for row in conn.execute("SELECT arch FROM evaluations")]
        for i, arch in enumerate(archs):
            poison = json.dumps({"accuracy": 5.0 if i % 2 else float("nan")})
            conn.execute("UPDATE evaluations SET metrics = ? WHERE arch = ?", (poison, arch))
    r = search(trained, tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert "out-of-range metrics" in r.stderr
    result = json.loads((tmp_path / "s" / "result.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert 0 <= result["best_metrics"]["accuracy"] <= 1
