"""Searching a predictor fitted to the supernet's scores (`search.predictor`, once-for-all's accuracy predictor):
the additive model, its uniform sample, and the search that scores only that sample with the supernet."""

from __future__ import annotations

import itertools
import random
import sqlite3

import numpy as np
import pytest

from supernet.config.schema import load_config
from supernet.core.errors import ConfigError, SearchError
from supernet.jobs.search import search_supernet
from supernet.runs.load import checkpoint_path
from supernet.search.predictor import AdditivePredictor, PairPredictor, predictor_sample
from supernet.search.supernet_evaluator import SupernetEvaluator
from supernet.space import create_space
from tests.conftest import needs_fashion, run_main
from tests.search.conftest import tiny_train_sets


@pytest.fixture(scope="module")
def macro():
    return create_space("nas-bench-macro", preset="fashion-mnist")  # 3^8 archs


def _additive_truth(space, seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 0.02, len(layer.choices)) for layer in space.layers]
    return lambda arch: 0.5 + sum(w[i] for w, i in zip(weights, space.indices(arch)))


def test_fit_recovers_an_additive_score(macro):
    truth = _additive_truth(macro)
    archs = predictor_sample(macro, 200, seed=1)
    model = AdditivePredictor.fit(macro, archs, [truth(a) for a in archs], ridge=1e-6)
    everything = [macro.from_indices(i) for i in itertools.product(range(3), repeat=8)]
    assert model.r2 == pytest.approx(1.0, abs=1e-6)
    assert max(abs(model.predict(a) - truth(a)) for a in everything) < 1e-4
    assert max(everything, key=model.predict) == max(everything, key=truth)


def test_ridge_shrinks_towards_the_mean(macro):
    truth = _additive_truth(macro)
    archs = predictor_sample(macro, 100, seed=2)
    scores = [truth(a) for a in archs]
    loose = AdditivePredictor.fit(macro, archs, scores, ridge=1e-6)
    tight = AdditivePredictor.fit(macro, archs, scores, ridge=1e6)
    spread = lambda m: np.std([m.predict(a) for a in archs])  # noqa: E731
    assert spread(tight) < 0.01 * spread(loose)
    assert tight.predict(archs[0]) == pytest.approx(float(np.mean(scores)), abs=1e-4)


def test_predictions_stay_scores(macro):
    archs = predictor_sample(macro, 50, seed=3)
    model = AdditivePredictor.fit(macro, archs, [5.0 if a.ops[0] == "id" else -5.0 for a in archs], ridge=1e-6)
    assert {model.predict(a) for a in archs} <= {0.0, 1.0}


def test_the_pair_predictor_recovers_how_neighbours_combine(macro):
    """A score with an interaction of layers 2 and 3 (the second choice of both, together, is worth more than
    apart): the pairs model recovers it exactly and picks the true best; the additive one cannot."""
    truth = _additive_truth(macro)
    combined = lambda a: truth(a) + (0.05 if tuple(macro.indices(a)[2:4]) == (1, 1) else 0.0)  # noqa: E731
    archs = predictor_sample(macro, 300, seed=6)
    scores = [combined(a) for a in archs]
    pairs = PairPredictor.fit(macro, archs, scores, ridge=1e-6, pair_ridge=1e-6)
    additive = AdditivePredictor.fit(macro, archs, scores, ridge=1e-6)
    everything = [macro.from_indices(i) for i in itertools.product(range(3), repeat=8)]
    assert len(pairs.pair_weights) == 7 and all(len(w) == 9 for w in pairs.pair_weights)
    assert max(abs(pairs.predict(a) - combined(a)) for a in everything) < 1e-4 and pairs.r2 == pytest.approx(1.0)
    assert max(abs(additive.predict(a) - combined(a)) for a in everything) > 0.01
    assert max(everything, key=pairs.predict) == max(everything, key=combined)


def test_the_sample_is_distinct_seeded_and_at_most_the_space(macro):
    first = predictor_sample(macro, 100, seed=0)
    assert len(set(first)) == 100 and first == predictor_sample(macro, 100, seed=0)
    assert first != predictor_sample(macro, 100, seed=1)
    small = macro.restrict([layer.choices[:1] for layer in macro.layers[:-1]] + [macro.layers[-1].choices])
    assert sorted(predictor_sample(small, 100, seed=0)) == sorted(small.from_indices([0] * 7 + [i]) for i in range(3))


def test_the_depth_balanced_design_spreads_depths_that_uniform_draws_leave_out(macro):
    depth = lambda a: sum(op != "id" for op in a.ops)  # noqa: E731
    shallow = lambda design: sum(depth(a) <= 2 for a in predictor_sample(macro, 150, 0, design))  # noqa: E731
    assert shallow("depth-balanced") >= 25 and shallow("uniform") <= 5  # uniform: 1.9% of the space


def test_the_predictor_pick_beats_the_noisy_argmax(macro):
    """Why the option exists: maximising a noisy score returns what the noise favours (the winner's curse);
    an additive fit to 100 uniform noisy scores averages the noise out of each choice's effect."""
    truth = _additive_truth(macro, seed=4)
    rng = random.Random(0)
    noisy = {
        a: truth(a) + rng.gauss(0, 0.03) for a in (macro.from_indices(i) for i in itertools.product(range(3), repeat=8))
    }
    archs = predictor_sample(macro, 100, seed=5)
    model = AdditivePredictor.fit(macro, archs, [noisy[a] for a in archs], ridge=1.0)
    best = max(truth(a) for a in noisy)
    regret_noisy = best - truth(max(noisy, key=noisy.get))
    regret_predictor = best - truth(max(noisy, key=model.predict))
    assert regret_predictor < 0.5 * regret_noisy


# -- the search ---------------------------------------------------------------------------------------------


@pytest.fixture
def scored(monkeypatch):
    """The archs the supernet scores (every call of evaluate_many)."""
    calls: list = []
    original = SupernetEvaluator.evaluate_many

    def many(self, archs):
        calls.extend(archs)
        return original(self, archs)

    monkeypatch.setattr(SupernetEvaluator, "evaluate_many", many)
    return calls


PREDICTED = [
    "search.predictor=additive",
    "search.predictor_samples=12",
    "search.options={population: 6, iterations: 2}",
]


@needs_fashion
def test_a_predictor_search_scores_only_its_sample_with_the_supernet(trained, tmp_path, scored):
    out = search_supernet(load_config(None, [*tiny_train_sets(), *PREDICTED]), trained, tmp_path / "a")
    sample = predictor_sample(search_space(trained), 12, seed=0)
    assert sorted(scored) == sorted(sample)
    assert out["predictor"]["samples"] == 12 and 0.0 <= out["predictor"]["r2"] <= 1.0
    model_best = out["best_metrics"]["accuracy"]
    weights = out["predictor"]["weights"]
    best_ops = out["best"].split(",")
    assert model_best == pytest.approx(out["predictor"]["intercept"] + sum(w[o] for w, o in zip(weights, best_ops)))
    with sqlite3.connect(checkpoint_path(trained).parent / "eval-cache.sqlite") as conn:
        cached = {a for (a,) in conn.execute("SELECT arch FROM evaluations")}
    assert {a.to_string() for a in sample} <= cached  # the supernet's scores are the checkpoint's, shared
    scored.clear()
    search_supernet(load_config(None, [*tiny_train_sets(), *PREDICTED, "search.max_macs=2M"]), trained, tmp_path / "b")
    assert scored == []  # another budget's search reuses the sample's scores


@needs_fashion
def test_a_pairs_search_reports_its_pair_weights_and_leaves_the_additive_identity_alone(trained, tmp_path, scored):
    from supernet.jobs.search_predictor import predictor_key

    pairs = [*tiny_train_sets(), *PREDICTED, "search.predictor=pairs", "search.predictor_pair_ridge=3"]
    out = search_supernet(load_config(None, pairs), trained, tmp_path / "p")
    predictor, ops = out["predictor"], out["best"].split(",")
    assert predictor["kind"] == "pairs" and predictor["pair_ridge"] == 3.0 and len(predictor["pair_weights"]) == 7
    main = sum(w[o] for w, o in zip(predictor["weights"], ops))
    pair = sum(w[f"{a}+{b}"] for w, a, b in zip(predictor["pair_weights"], ops, ops[1:]))
    assert out["best_metrics"]["accuracy"] == pytest.approx(predictor["intercept"] + main + pair)
    assert set(scored) <= set(predictor_sample(search_space(trained), 12, seed=0))  # the sample (maybe cached)
    additive = [load_config(None, [*PREDICTED, f"search.predictor_pair_ridge={r}"]).search for r in (3, 100)]
    assert predictor_key("k", additive[0]) == predictor_key("k", additive[1])  # a pair ridge is no additive setting
    assert predictor_key("k", load_config(None, pairs).search) != predictor_key("k", additive[0])


def search_space(run_dir):
    from supernet.runs.load import load_supernet

    return load_supernet(run_dir)[0].space


@needs_fashion
def test_a_run_directory_it_would_refuse_is_refused_before_the_sample_is_scored(trained, tmp_path, scored):
    cfg = load_config(None, [*tiny_train_sets(), *PREDICTED])
    search_supernet(cfg, trained, tmp_path / "a")
    scored.clear()
    before = (tmp_path / "a" / "journal.sqlite").read_bytes()
    other = load_config(None, [*tiny_train_sets(), *PREDICTED, "search.predictor_samples=13"])
    with pytest.raises(ConfigError, match="already holds a search journal"):
        search_supernet(other, trained, tmp_path / "a")
    with pytest.raises(SearchError, match=r"other evaluation settings \(eval.predictor"):  # another predictor's
        search_supernet(other, trained, tmp_path / "a", resume=True)
    assert scored == [] and (tmp_path / "a" / "journal.sqlite").read_bytes() == before


@needs_fashion
def test_racing_on_a_predictor_is_refused(trained, tmp_path):
    with pytest.raises(ConfigError, match="search.racing stops supernet evaluations early"):
        cfg = load_config(None, [*tiny_train_sets(), *PREDICTED, "search.racing=true"])
        search_supernet(cfg, trained, tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_a_predictor_on_a_table_search_is_refused(tmp_path):
    from supernet.jobs.search import search_table

    table = tmp_path / "t.csv"
    table.write_text("arch,accuracy\n")
    space = create_space("nas-bench-macro", preset="fashion-mnist")
    cfg = load_config(None, ["search.predictor=additive"])
    with pytest.raises(ConfigError, match="a table or benchmark search reads the true scores"):
        search_table(cfg, table, space, tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_a_bad_predictor_setting_is_one_line(tmp_path):
    r = run_main(
        "search", "--supernet", str(tmp_path), "--run-dir", str(tmp_path / "s"), "--set", "search.predictor=mlp"
    )
    assert r.returncode == 2 and "'search.predictor' must be one of none, additive, pairs, got 'mlp'" in r.stderr
    bad_pair_ridge = ["--set", "search.predictor_pair_ridge=0"]
    r = run_main("search", "--supernet", str(tmp_path), "--run-dir", str(tmp_path / "s"), *bad_pair_ridge)
    assert r.returncode == 2 and "search.predictor_pair_ridge" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()
