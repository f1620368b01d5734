"""Rank a ground-truth arch list with one or more trained supernets and score the ranking.

`rank_supernets` evaluates every ground-truth arch on every supernet (BN recalibration as
configured in the `eval` section, exactly as `supernet search` does) and writes into R:

    rank.json         per supernet: Kendall tau, Pearson, Spearman, top-k overlap, improvement
                      (at n = 10) and the whole improvement curve; with several supernets the
                      pairwise self-consistency matrices (inter-choice paper Table 2)
    predictions.csv   arch,accuracy,test_accuracy,pred_0,pred_1,...

The ground truth is a CSV (`supernet groundtruth`) or a published benchmark (`BenchmarkSpec`).
Beside every result rank.json carries `reference`: the zero-cost bars (Kendall tau of ranking by
MACs alone and by params alone) and, for a benchmark, the ceiling (its own runs' mutual tau).
    rank_scatter.png, rank_improvement.png (and rank_consistency.png with several supernets)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supernet.analysis import metrics as M
from supernet.analysis.benchmark import BenchmarkSpec
from supernet.analysis.groundtruth import read_groundtruth
from supernet.core.errors import ConfigError
from supernet.core.logs import get_logger
from supernet.space import Arch, SearchSpace

logger = get_logger(__name__)


@dataclass(frozen=True)
class GroundTruth:
    """The archs to rank, their true accuracy (and test accuracy where known), and the reference
    numbers every result is reported beside."""

    source: str
    archs: list[Arch]
    accuracy: list[float]
    test: list[float | None]
    reference: dict[str, Any] = field(default_factory=dict)


def resolve_groundtruth(
    groundtruth: str | Path | BenchmarkSpec,
    space: SearchSpace,
    identity: str = "skip",
) -> GroundTruth:
    """A ground-truth CSV or a benchmark, read for `space`, with its reference numbers. Of a
    benchmark only the archs `space` contains are used (a pruned space holds fewer; logged at INFO)."""
    from supernet.analysis.benchmark import load_benchmark, reference

    if isinstance(groundtruth, BenchmarkSpec):
        bench = load_benchmark(groundtruth.name, groundtruth.path, space)
        if bench.outside:
            logger.info(
                f"benchmark {bench.path}: {bench.outside} of its {bench.outside + len(bench.entries)} archs are "
                f"outside the supernet's (pruned) space and left out; {len(bench.entries)} remain"
            )
        archs = groundtruth.archs(bench, space)
        ref = {**reference(bench, archs), "archs_in_space": len(bench.entries), "archs_outside_space": bench.outside}
        return GroundTruth(f"{bench.name}:{bench.path}", archs, bench.accuracy(archs), [None] * len(archs), ref)
    return _csv_groundtruth(groundtruth, space, identity)


def _csv_groundtruth(groundtruth: str | Path, space: SearchSpace, identity: str) -> GroundTruth:
    from supernet.cost import CostTable

    archs, true, test = read_groundtruth(groundtruth, space)
    table = CostTable.build(space, identity)
    costs = [table.query(a) for a in archs]
    zero = M.zero_cost_kendall(
        [c.macs for c in costs], [c.params for c in costs], true, [M.depth(a.ops) for a in archs]
    )
    return GroundTruth(str(groundtruth), archs, true, test, {"zero_cost_kendall": zero})


def common_space(a: SearchSpace, b: SearchSpace) -> SearchSpace:
    """The archs both spaces contain, when one space is a pruning of the other (or both of the same
    parent): per layer the choices of both; otherwise `a` (different spaces; ranking compares them as
    given)."""
    same_parent = (a.name, dict(a.options)) == (b.name, dict(b.options)) and a.num_layers == b.num_layers
    if not same_parent:
        return a
    keep = [[op for op in la.choices if op in lb.choices] for la, lb in zip(a.layers, b.layers)]
    empty = [i for i, ops in enumerate(keep) if not ops]
    if empty:
        raise ConfigError(
            f"the supernets' spaces share no arch: layer {empty[0]} keeps {list(a.layers[empty[0]].choices)} in "
            f"one and {list(b.layers[empty[0]].choices)} in the other"
        )
    return a.restrict(keep)


def format_rank(out: dict[str, Any]) -> str:
    """A plain-text table of rank.json (what the CLI prints)."""
    lines = [
        f"{out['num_archs']} archs; top-k k={out['k']}; improvement at n={out['improvement_at']}",
        f"{'supernet':<24} {'kendall':>8} {'pearson':>8} {'spearman':>8} {'top-k':>6} {'improv':>7}",
    ]
    f = lambda v: "   nan" if v is None or v != v else f"{v:.3f}"  # noqa: E731
    for s in out["supernets"]:
        lines.append(
            f"{s['label'][:24]:<24} {f(s['kendall']):>8} {f(s['pearson']):>8} {f(s['spearman']):>8} "
            f"{f(s['topk_overlap']):>6} {f(s['improvement']):>7}"
        )
    ref = out.get("reference") or {}
    if ref.get("ceiling_kendall"):
        ceiling = ref["ceiling_kendall"]
        lines.append(
            "ceiling (benchmark run vs run Kendall tau): " + ", ".join(f"{name} {f(v)}" for name, v in ceiling.items())
        )
    if ref.get("zero_cost_kendall"):
        lines.append(
            "zero-cost bars (Kendall tau): "
            + ", ".join(f"{name}-only {f(v)}" for name, v in ref["zero_cost_kendall"].items())
        )
    sc = out.get("self_consistency")
    if sc:
        lines.append("self-consistency (mean pairwise): " + ", ".join(f"{m} {f(v)}" for m, v in sc["mean"].items()))
    return "\n".join(lines)
