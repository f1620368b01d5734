"""Ranking metrics against hand-computed values and scipy."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from supernet.analysis import metrics as M

PRED = [1.0, 2.0, 3.0, 4.0]
TRUE = [1.0, 3.0, 2.0, 4.0]


def test_correlations_by_hand():
    # 6 pairs, one discordant (archs 1 and 2): tau = (5 - 1) / 6
    assert M.kendall_tau(PRED, TRUE) == pytest.approx(4 / 6)
    # rank differences (0, -1, 1, 0): rho = 1 - 6 * 2 / (4 * 15)
    assert M.spearman(PRED, TRUE) == pytest.approx(0.8)
    assert M.pearson(PRED, TRUE) == pytest.approx(0.8)  # the values are their own ranks
    assert M.kendall_tau(PRED, PRED[::-1]) == pytest.approx(-1.0)


def test_correlations_match_scipy():
    rng = np.random.default_rng(0)
    p, t = rng.random(25), rng.random(25)
    p[3] = p[4]  # a tie: tau-b
    assert M.kendall_tau(p, t) == pytest.approx(stats.kendalltau(p, t)[0])
    assert M.pearson(p, t) == pytest.approx(stats.pearsonr(p, t)[0])
    assert M.spearman(p, t) == pytest.approx(stats.spearmanr(p, t)[0])


def test_constant_or_short_input_is_nan():
    assert math.isnan(M.kendall_tau([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]))
    assert math.isnan(M.pearson([0.1], [0.2]))
    with pytest.raises(ValueError):
        M.spearman([1, 2], [1, 2, 3])


def test_topk_overlap():
    assert M.topk_overlap(PRED, TRUE, 2) == 0.5  # predicted {3, 2}, true {3, 1}
    assert M.topk_overlap(PRED, TRUE, 1) == 1.0
    assert M.topk_overlap(PRED, TRUE, 4) == 1.0
    assert M.default_k(30) == 3 and M.default_k(4) == 1


def test_improvement_hand_example():
    true = [0.1, 0.2, 0.3, 0.4]  # mean 0.25, best 0.4
    pred = [0.0, 0.1, 0.9, 0.5]  # predicted order: 0.3, 0.4, 0.2, 0.1
    curve = M.improvement_curve(pred, true)
    assert curve == pytest.approx([1 / 3, 2 / 3, 1 / 3, 0.0])


def test_improvement_is_one_for_a_perfect_predictor_at_top1():
    true = [0.7, 0.9, 0.8, 0.6, 0.85]
    assert M.improvement(true, true, 1) == pytest.approx(1.0)
    monotone = [2 * t + 1 for t in true]  # any increasing map ranks the same
    curve = M.improvement_curve(monotone, true)
    assert curve[0] == pytest.approx(1.0) and curve[-1] == pytest.approx(0.0)
    assert all(a >= b - 1e-12 for a, b in zip(curve, curve[1:]))
    assert M.improvement([-t for t in true], true, 1) < 0  # inverted order: worse than random


def test_improvement_random_expectation_is_zero():
    true = [0.3, 0.5, 0.9, 0.6, 0.4]
    for n in range(1, 6):
        mean = np.mean([M.improvement(list(p), true, n) for p in itertools.permutations([1, 2, 3, 4, 5])])
        assert mean == pytest.approx(0.0, abs=1e-12)
    # all predictions tied: ties count by expectation, so exactly the random baseline
    assert M.improvement_curve([0.5] * 5, true) == pytest.approx([0.0] * 5, abs=1e-12)


def test_improvement_ties_at_the_cut():
    true = [0.1, 0.2, 0.3, 0.4]  # mean 0.25
    pred = [0.0, 0.0, 1.0, 1.0]  # top-1 is one of {0.3, 0.4}: expected 0.35
    assert M.mean_true_of_top(pred, true, 1) == pytest.approx(0.35)
    assert M.improvement(pred, true, 1) == pytest.approx((0.35 - 0.25) / 0.15)


def test_ranking_metrics_bundle():
    out = M.ranking_metrics(PRED, TRUE, k=2, improvement_at=10)
    assert out["improvement_at"] == 3  # capped below the number of archs
    assert out["improvement"] == pytest.approx(out["improvement_curve"][2])
    assert out["kendall"] == pytest.approx(4 / 6) and out["topk_overlap"] == 0.5


def test_self_consistency_table():
    preds = {"a": [0.1, 0.2, 0.3, 0.4], "b": [0.1, 0.3, 0.2, 0.4], "c": [0.4, 0.3, 0.2, 0.1]}
    m = M.self_consistency(preds)
    assert m.shape == (3, 3)
    assert np.allclose(m, m.T) and np.allclose(np.diag(m), 1.0)
    assert m[0, 1] == pytest.approx(4 / 6) and m[0, 2] == pytest.approx(-1.0)
    assert M.mean_off_diagonal(m) == pytest.approx((4 / 6 - 1 - 4 / 6) / 3)
    assert np.allclose(np.diag(M.self_consistency([[1, 1, 1], [1, 2, 3]], "pearson")), 1.0)


def test_json_safe():
    assert M.json_safe({"a": float("nan"), "b": [np.float64(1.5), np.int64(2)], "c": np.eye(2)}) == {
        "a": None,
        "b": [1.5, 2],
        "c": [[1.0, 0.0], [0.0, 1.0]],
    }


accs = st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=12)


@settings(max_examples=60, deadline=None)
@given(accs, st.randoms(use_true_random=False))
def test_improvement_properties(true, rnd):
    pred = [rnd.random() for _ in true]
    curve = M.improvement_curve(pred, true)
    if max(true) == min(true):
        assert all(math.isnan(v) for v in curve)
        return
    best = M.improvement_curve(true, true)  # ranking by the truth itself is optimal at every n
    assert curve[-1] == pytest.approx(0.0, abs=1e-9)
    for got, top in zip(curve, best):
        assert got <= top + 1e-9 and top <= 1 + 1e-9


def test_improvement_is_nan_for_equal_truth_whose_mean_rounds():
    """Regression: the mean of three equal floats can differ from them by rounding, which made
    `improvement` divide a rounding error by a rounding error (found by hypothesis)."""
    true = [0.8304312600195967] * 3
    assert np.mean(true) != max(true)  # the premise: this value's mean rounds
    assert all(math.isnan(v) for v in M.improvement_curve([0.1, 0.5, 0.2], true))
