"""A study's supernet scores outlive the supernet: `benchmarks/score_dump.py` writes a run's evaluation cache as
JSON, and `predictor_design.py --scores` refits and re-picks from it with no checkpoint (issue 31)."""

from __future__ import annotations

import json
import random
import runpy
import sys

import pytest

from tests.conftest import REPO, needs_fashion

BENCHMARKS = REPO / "benchmarks"


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory):
    """A synthetic NAS-Bench-Macro file (every arch, random accuracies), made once for the module."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _smoke import synthetic_macro_benchmark
    finally:
        sys.path.remove(str(BENCHMARKS))
    return synthetic_macro_benchmark(tmp_path_factory.mktemp("bench") / "bench.json")


@pytest.fixture()
def bench(monkeypatch, bench_file):
    """The benchmark scripts importable, and the synthetic benchmark file."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return bench_file


def _space():
    from supernet.space import create_space

    return create_space("nas-bench-macro", preset="cifar10")


def _write_dump(path, space, scores, **head):
    from score_dump import FORMAT, dump

    base = {
        "format": FORMAT,
        "space": space.name,
        "space_options": dict(space.options),
        "space_fingerprint": space.fingerprint(),
        "identity": "skip",
    }
    path.write_text(dump({**base, **head}, {a: {"accuracy": s} for a, s in scores.items()}))
    return path


def _design(monkeypatch, dumped, out, bench, *args):
    """predictor_design.py on the dump `dumped`, the synthetic benchmark `bench`, the depth-balanced design."""
    common = ["--scores", str(dumped), "--out", str(out), "--benchmark-file", str(bench), "--designs", "depth-balanced"]
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / "predictor_design.py"), *common, *args])
    runpy.run_path(str(BENCHMARKS / "predictor_design.py"), run_name="__main__")


def _pool_scores(space, n):
    from supernet.search.predictor import predictor_sample

    rng = random.Random(3)
    return {a: rng.uniform(0.2, 0.9) for a in predictor_sample(space, n, 0, "depth-balanced")}


def test_a_design_from_a_dump_is_the_design_of_its_scores(bench, tmp_path, monkeypatch, capsys):
    from predictor_design import Budgets, design_rows

    from supernet.analysis.benchmark import load_benchmark
    from supernet.cost import CostTable

    space = _space()
    scores = _pool_scores(space, 40)
    dumped = _write_dump(tmp_path / "scores.json", space, scores)
    args = ["--pool", "40", "--sizes", "20,40", "--samples", "30", "--draws", "3", "--ridge", "1,20"]
    _design(monkeypatch, dumped, tmp_path / "o", bench, *args)
    got = json.loads((tmp_path / "o" / "design.json").read_text())

    budgets = Budgets(
        load_benchmark("nas-bench-macro", str(bench), space),
        space,
        CostTable.build(space, "skip"),
        [25.0, 50.0, 75.0, 100.0],
    )
    settings = type("A", (), {"seed": 0, "sizes": [20, 40], "draws": 3, "samples": 30, "ridge": [1.0, 20.0]})
    expected = design_rows(budgets, space, list(scores), scores, settings, "depth-balanced")
    assert got["rows"] == json.loads(json.dumps(expected))
    assert len({tuple(r["mean_regret"]) for r in got["rows"]}) > 1  # the scores differ, so do the fits' picks


@pytest.mark.parametrize(
    "change, needle",
    [
        ("pool", "of the depth-balanced pool's 60 archs are not in"),
        ("nan", "expected a finite number"),
        ("fingerprint", "another version of space"),
        ("format", "not a score dump"),
        ("arch", "does not fit space"),
        ("set", "a dump's scores are fixed"),
        ("identity", "is not one of"),
    ],
)
def test_a_dump_that_cannot_serve_is_one_line_exit_2(bench, tmp_path, monkeypatch, capsys, change, needle):
    space = _space()
    scores = _pool_scores(space, 40)
    head = {"space_fingerprint": "0" * 16} if change == "fingerprint" else {}
    head |= {"format": "other/1"} if change == "format" else {}
    head |= {"identity": ["skip"]} if change == "identity" else {}
    dumped = _write_dump(tmp_path / "scores.json", space, scores, **head)
    data = json.loads(dumped.read_text())
    if change in ("nan", "arch"):
        data["scores"]["e3k3,bogus" if change == "arch" else next(iter(data["scores"]))] = "nan"
        dumped.write_text(json.dumps(data).replace('"nan"', "NaN" if change == "nan" else "0.5"))
    extra = ["--set", "eval.metric=loss"] if change == "set" else []
    pool = "60" if change == "pool" else "40"
    with pytest.raises(SystemExit) as e:
        _design(monkeypatch, dumped, tmp_path / "o", bench, "--pool", pool, "--sizes", "20", *extra)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert needle in err[-1] and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "o" / "design.json").exists()


@needs_fashion
def test_a_dump_holds_what_the_evaluation_cache_holds(bench, tmp_path):
    from _smoke import smoke_macro_supernet
    from score_dump import cached_scores, load_dump

    from supernet.jobs.rank import predict
    from supernet.runs.load import default_config, load_supernet

    run = smoke_macro_supernet(tmp_path / "supernet")
    net, _ = load_supernet(run)
    archs = [net.space.from_indices((i, 2 - i) * 4) for i in range(3)]
    cfg = default_config(run, None, ["eval.metric=loss"])
    scored = predict(cfg, run, archs)
    head, cached = cached_scores(cfg, run)
    assert {a: m["accuracy"] for a, m in cached.items()} == dict(zip(archs, scored, strict=True))
    assert cached_scores(default_config(run, None, []), run)[1] == {}  # another metric: another key, nothing
    from score_dump import dump

    (tmp_path / "d.json").write_text(dump(head, cached))
    space, identity, loaded = load_dump(tmp_path / "d.json")
    assert loaded == dict(zip(archs, scored, strict=True)) and identity == net.options.identity
    assert space.fingerprint() == net.space.fingerprint()


def test_the_pair_model_sees_an_interaction_the_additive_one_cannot(bench):
    """Scores made of one interaction of neighbours (layers 2 and 3 both `e6k5`) and nothing else: the additive
    model can only smear it over the two layers' main effects; the `pairs` model finds it on archs it was not fitted
    to, and `predictor_design.py`'s matrix form of it predicts what the model does, arch by arch."""
    import numpy as np
    from predictor_design import MatrixForm

    from supernet.search.predictor import AdditivePredictor, PairPredictor, one_hot, pair_one_hot, predictor_sample

    space = _space()

    def truth(arch) -> float:
        return 1.0 if arch.ops[2] == arch.ops[3] == "e6k5" else 0.0

    fitted = predictor_sample(space, 150, 0, "uniform")
    held_out = [a for a in predictor_sample(space, 300, 1, "uniform") if a not in set(fitted)]
    scores, true = [truth(a) for a in fitted], np.array([truth(a) for a in held_out])
    pairs = pair_one_hot(space, held_out)
    assert pairs.shape == (len(held_out), 7 * 9) and (pairs.sum(axis=1) == 7).all()
    searched = PairPredictor.fit(space, fitted, scores, 1.0, 1.0)  # what search.predictor=pairs fits
    pair_pred = MatrixForm(searched).predict(one_hot(space, held_out), pairs)
    additive = AdditivePredictor.fit(space, fitted, scores, 1.0)
    additive_pred = np.array([additive.predict(a) for a in held_out])
    assert np.corrcoef(pair_pred, true)[0, 1] > 0.95 > 0.8 > np.corrcoef(additive_pred, true)[0, 1]
    assert np.allclose(np.clip(pair_pred, 0.0, 1.0), [searched.predict(a) for a in held_out], atol=1e-9)
