"""Ranking metrics for supernet predictions against ground truth (pure functions, no I/O).

Everything takes plain sequences of numbers (`predicted[i]` and `true[i]` belong to the same arch),
so the module is usable from a notebook on any pair of accuracy lists.

- `kendall_tau`, `pearson`, `spearman`: scipy's coefficients (tau-b; NaN for constant inputs).
- `topk_overlap`: the fraction of the truly best k archs that are among the predicted best k.
- `improvement` / `improvement_curve`: the inter-choice paper's improvement metric (section 3.4):
  keep the n archs the supernet predicts best; their mean ground-truth accuracy, normalised so
  0 = the mean of all archs (random choice) and 1 = the single best arch.
- `self_consistency`: pairwise correlations between several supernets' predictions of the same
  archs (inter-choice paper, Table 2 / Appendix F).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

CORRELATIONS = ("kendall", "pearson", "spearman")


def _pair(predicted: Sequence[float], true: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predicted, dtype=float)
    t = np.asarray(true, dtype=float)
    if p.shape != t.shape or p.ndim != 1:
        raise ValueError(f"predicted and true must be 1-d and of equal length, got {p.shape} and {t.shape}")
    return p, t


def _corr(fn, predicted: Sequence[float], true: Sequence[float]) -> float:
    p, t = _pair(predicted, true)
    if len(p) < 2 or np.all(p == p[0]) or np.all(t == t[0]):
        return float("nan")
    return float(fn(p, t)[0])


def kendall_tau(predicted: Sequence[float], true: Sequence[float]) -> float:
    """Kendall's tau-b (handles ties); NaN when either list is constant or shorter than 2."""
    return _corr(stats.kendalltau, predicted, true)


def kendall_within_groups(predicted: Sequence[float], true: Sequence[float], groups: Sequence[object]) -> float:
    """Kendall's tau inside each group (e.g. archs of equal depth), averaged with weights by the group's
    number of pairs: how well a predictor orders what a group-level heuristic (depth) cannot tell apart.
    Groups with fewer than two members or constant values are left out; NaN when none is left."""
    by_group: dict[object, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    total, weight = 0.0, 0
    for members in by_group.values():
        tau = kendall_tau([predicted[i] for i in members], [true[i] for i in members])
        if math.isnan(tau):
            continue
        pairs = len(members) * (len(members) - 1) // 2
        total, weight = total + tau * pairs, weight + pairs
    return total / weight if weight else float("nan")


def pearson(predicted: Sequence[float], true: Sequence[float]) -> float:
    return _corr(stats.pearsonr, predicted, true)


def spearman(predicted: Sequence[float], true: Sequence[float]) -> float:
    return _corr(stats.spearmanr, predicted, true)


def correlations(predicted: Sequence[float], true: Sequence[float]) -> dict[str, float]:
    return {
        "kendall": kendall_tau(predicted, true),
        "pearson": pearson(predicted, true),
        "spearman": spearman(predicted, true),
    }


def default_k(n: int, fraction: float = 0.1) -> int:
    """k for top-k metrics: `fraction` of the archs, at least 1."""
    return max(1, int(round(fraction * n)))


def topk_overlap(predicted: Sequence[float], true: Sequence[float], k: int | None = None) -> float:
    """|predicted top-k ∩ true top-k| / k. Ties are broken by list order (stable sort)."""
    p, t = _pair(predicted, true)
    if len(p) == 0:
        return float("nan")
    k = default_k(len(p)) if k is None else k
    if not 1 <= k <= len(p):
        raise ValueError(f"k must be in 1..{len(p)}, got {k}")
    top_p = set(np.argsort(-p, kind="stable")[:k].tolist())
    top_t = set(np.argsort(-t, kind="stable")[:k].tolist())
    return len(top_p & top_t) / k


def mean_true_of_top(predicted: Sequence[float], true: Sequence[float], n: int) -> float:
    """Mean ground truth of the n archs predicted best.

    Predictions tied at the cut-off are handled by expectation (as if the tie were broken at
    random), so the result does not depend on the order of the list.
    """
    p, t = _pair(predicted, true)
    if not 1 <= n <= len(p):
        raise ValueError(f"n must be in 1..{len(p)}, got {n}")
    order = np.argsort(-p, kind="stable")
    cut = p[order[n - 1]]
    above = p > cut
    tied = p == cut
    need = n - int(above.sum())
    total = t[above].sum() + need * t[tied].mean()
    return float(total / n)


def improvement(predicted: Sequence[float], true: Sequence[float], n: int) -> float:
    """(mean truth of the predicted top-n - mean of all) / (best truth - mean of all).

    0: no better than picking at random; 1: only the best arch kept (reachable at n = 1).
    NaN when all ground-truth values are equal.
    """
    _, t = _pair(predicted, true)
    mean_all, best = float(t.mean()), float(t.max())
    if best == float(t.min()):  # all equal; `best == mean` can fail by rounding (mean of equal floats)
        return float("nan")
    return (mean_true_of_top(predicted, true, n) - mean_all) / (best - mean_all)


def improvement_curve(predicted: Sequence[float], true: Sequence[float]) -> list[float]:
    """`improvement(n)` for n = 1 .. len(archs) (element n-1); the last value is always 0."""
    return [improvement(predicted, true, n) for n in range(1, len(predicted) + 1)]


def improvement_n(num_archs: int, n: int = 10) -> int:
    """The n at which the improvement is summarised: `n`, but below the number of archs (keeping
    all archs always gives 0), and at least 1."""
    return max(1, min(n, num_archs - 1))


def ranking_metrics(
    predicted: Sequence[float], true: Sequence[float], k: int | None = None, improvement_at: int = 10
) -> dict[str, float | int | list[float]]:
    """All single-supernet metrics in one dict (JSON-ready apart from NaN)."""
    n = len(predicted)
    k = default_k(n) if k is None else k
    at = improvement_n(n, improvement_at)
    return {
        **correlations(predicted, true),
        "k": k,
        "topk_overlap": topk_overlap(predicted, true, k),
        "improvement_at": at,
        "improvement": improvement(predicted, true, at),
        "improvement_curve": improvement_curve(predicted, true),
    }


def zero_cost_kendall(
    macs: Sequence[float], params: Sequence[float], true: Sequence[float], depth: Sequence[float] | None = None
) -> dict[str, float]:
    """The zero-cost bars: Kendall tau of ranking by MACs alone, by parameters alone and (given) by depth
    alone, the number of layers that are not identities (bigger = better). A supernet whose ranking does
    not beat these adds nothing over counting (on NAS-Bench-Macro depth alone ranks at ~0.68)."""
    bars = {"macs": kendall_tau(macs, true), "params": kendall_tau(params, true)}
    if depth is not None:
        bars["depth"] = kendall_tau(depth, true)
    return bars


def depth(ops: Sequence[str], identity: str = "id") -> int:
    """Layers of an arch that compute something: the ones whose op is not the identity."""
    return sum(op != identity for op in ops)


def self_consistency(
    predictions: Mapping[str, Sequence[float]] | Sequence[Sequence[float]], metric: str = "kendall"
) -> np.ndarray:
    """Pairwise correlation matrix between several supernets' predictions of the same archs.

    Symmetric, ones on the diagonal (by definition, even for constant predictions)."""
    rows = list(predictions.values()) if isinstance(predictions, Mapping) else list(predictions)
    fn = {"kendall": kendall_tau, "pearson": pearson, "spearman": spearman}[metric]
    m = len(rows)
    out = np.eye(m)
    for i in range(m):
        for j in range(i + 1, m):
            out[i, j] = out[j, i] = fn(rows[i], rows[j])
    return out


def mean_off_diagonal(matrix: np.ndarray) -> float:
    """The average pairwise value (the number reported in inter-choice Table 2)."""
    m = np.asarray(matrix, dtype=float)
    if m.shape[0] < 2:
        return float("nan")
    mask = ~np.eye(m.shape[0], dtype=bool)
    return float(np.nanmean(m[mask])) if np.any(np.isfinite(m[mask])) else float("nan")


def json_safe(value):
    """NaN/inf -> None, numpy scalars/arrays -> Python, recursively (for strict JSON files)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
