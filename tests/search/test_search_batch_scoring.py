"""Issue 30.4: `search` scores a generation at once, `rank` scores its archs the same way and shares the
evaluation cache beside the checkpoint with `search`; one cache/journal row per arch."""

from __future__ import annotations

import random
import sqlite3

import pytest

from supernet.config.schema import load_config
from supernet.jobs.rank import predict
from supernet.jobs.search import _evaluation_key, search_supernet, searched_config
from supernet.runs.build import build_evaluator, load_data
from supernet.runs.load import checkpoint_path, load_supernet
from supernet.search import Journal
from supernet.search.supernet_evaluator import SupernetEvaluator
from tests.conftest import needs_fashion
from tests.search.conftest import tiny_train_sets

pytestmark = needs_fashion


def _rows(path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT cache_key, arch FROM evaluations").fetchall()


def test_search_scores_generations_together_one_row_per_arch(trained, tmp_path, monkeypatch):
    calls = []
    original = SupernetEvaluator.evaluate_many

    def many(self, archs):
        calls.append(len(archs))
        return original(self, archs)

    def one(self, arch):
        raise AssertionError("search scored an arch alone")

    monkeypatch.setattr(SupernetEvaluator, "evaluate_many", many)
    monkeypatch.setattr(SupernetEvaluator, "evaluate", one)
    cfg = load_config(None, tiny_train_sets())
    out = search_supernet(cfg, trained, tmp_path / "search")
    assert calls and max(calls) > 1  # whole generations, not one arch per call
    assert sum(calls) == out["evaluations"]
    archs = [a for _, a in _rows(tmp_path / "search" / "journal.sqlite")]
    assert len(archs) == len(set(archs)) == out["evaluations"]


def test_rank_scores_equal_one_at_a_time_and_reuse_the_cache(trained, tmp_path, monkeypatch):
    net, meta = load_supernet(trained)
    rng = random.Random(3)
    archs = list(dict.fromkeys(net.space.sample(rng) for _ in range(7)))
    cfg = load_config(None, tiny_train_sets())
    first = predict(cfg, trained, [a.to_string() for a in archs], run_dir=tmp_path / "rank")
    evaluator = build_evaluator(searched_config(cfg, meta), net, load_data(searched_config(cfg, meta)))
    assert first == [evaluator.evaluate(a) for a in archs]  # the prefix tree changes no score
    cache = checkpoint_path(trained).parent / "eval-cache.sqlite"  # where `search` keeps it
    key = _evaluation_key(searched_config(cfg, meta), trained)  # the key `search` uses
    assert {a.to_string() for a in archs} <= {a for k, a in _rows(cache) if k == key}

    def refuse(self, archs):
        raise AssertionError("rank scored an arch the cache holds")

    monkeypatch.setattr(SupernetEvaluator, "evaluate_many", refuse)
    assert predict(cfg, trained, [a.to_string() for a in reversed(archs)]) == first[::-1]


def test_rank_reuses_what_a_search_scored(trained, tmp_path):
    net, meta = load_supernet(trained)
    cfg = load_config(None, tiny_train_sets())
    arch = net.space.sample(random.Random(11))
    with Journal(checkpoint_path(trained).parent / "eval-cache.sqlite") as journal:  # as `search` records it
        journal.record(_evaluation_key(searched_config(cfg, meta), trained), arch, {"accuracy": 0.123})
    assert predict(cfg, trained, [arch.to_string()]) == [0.123]


def test_racing_search_picks_what_a_full_search_picks(trained, tmp_path):
    sets = tiny_train_sets(eval__val_batch_size=16, search__iterations=3)
    raced = search_supernet(load_config(None, [*sets, "search.racing=true"]), trained, tmp_path / "raced")
    full = search_supernet(load_config(None, sets), trained, tmp_path / "full")
    assert raced["best"] == full["best"] and [r["arch"] for r in raced["topk"]] == [r["arch"] for r in full["topk"]]
    images = [r["metrics"]["images"] for r in raced["history"]]
    assert images and all(0 < n <= 128 for n in images)
    _, meta = load_supernet(trained)
    key = _evaluation_key(searched_config(load_config(None, sets), meta), trained)
    with Journal(checkpoint_path(trained).parent / "eval-cache.sqlite") as cache:
        rows = {a.to_string(): m for a, m in cache.lookup(key).items()}
    partial = {r["arch"] for r in raced["history"] if r["metrics"]["images"] < 128}
    assert not partial & set(rows)  # a raced score never reaches the shared cache ...
    assert all("images" not in m for m in rows.values())  # ... which keeps its format


def test_racing_needs_an_accuracy_only_strategy(trained, tmp_path):
    from supernet.core.errors import ConfigError

    cfg = load_config(None, [*tiny_train_sets(search__strategy="nsga2"), "search.racing=true"])
    with pytest.raises(ConfigError, match="search.racing needs"):
        search_supernet(cfg, trained, tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_nsga2_on_a_loss_score_drops_its_default_accuracy_bar(trained, tmp_path):
    """SCARLET's acc_min 0.4 is an accuracy; on exp(-loss) (~0.1 for this barely trained supernet, ~0.3 for
    the shipped NAS-Bench-Macro config's) it rejected every arch: "no architecture reached accuracy > 0.4"."""
    cfg = load_config(None, [*tiny_train_sets(search__strategy="nsga2"), "eval.metric=loss"])
    out = search_supernet(cfg, trained, tmp_path / "search")
    assert out["acc_min"] is None and out["evaluations"] > 0
    assert out["best_metrics"]["accuracy"] < 0.4  # the bar it no longer applies would have rejected the pick


def test_an_explicit_accuracy_bar_on_a_loss_score_is_refused(trained, tmp_path):
    from supernet.core.errors import ConfigError

    sets = [*tiny_train_sets(search__strategy="nsga2"), "eval.metric=loss", "search.options={acc_min: 0.2}"]
    with pytest.raises(ConfigError, match=r"search.options.acc_min \(0.2\) is an accuracy"):
        search_supernet(load_config(None, sets), trained, tmp_path / "search")
    assert not (tmp_path / "search").exists()
