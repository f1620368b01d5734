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

import csv
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from supernet.analysis import metrics as M
from supernet.analysis.benchmark import BenchmarkSpec
from supernet.analysis.groundtruth import read_groundtruth
from supernet.config import Config
from supernet.errors import ConfigError
from supernet.io import atomic_write_text
from supernet.space import Arch, SearchSpace
from supernet.supernet_run import (
    checkpoint_digest,
    load_supernet,
    supernet_run_dir,
    trained_config,
)


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
    log: Callable[[str], None] | None = None,
) -> GroundTruth:
    """A ground-truth CSV or a benchmark, read for `space`, with its reference numbers. Of a
    benchmark only the archs `space` contains are used (a pruned space holds fewer; said in `log`)."""
    from supernet.analysis.benchmark import load_benchmark, reference

    if isinstance(groundtruth, BenchmarkSpec):
        bench = load_benchmark(groundtruth.name, groundtruth.path, space)
        if bench.outside and log:
            log(
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


def predict(
    cfg: Config, checkpoint: str | Path, archs: Sequence[Arch | str], log: Callable[[str], None] | None = None
) -> list[float]:
    """Supernet accuracy of each arch (BN recalibrated per `cfg.eval`), on the supernet's own data."""
    from supernet.assemble import build_evaluator, load_data

    net, meta = load_supernet(Path(checkpoint))
    cfg = trained_config(cfg, meta)  # evaluate on the data the supernet was trained on
    evaluator = build_evaluator(cfg, net, load_data(cfg))
    out = []
    start = time.time()
    for i, arch in enumerate(archs, 1):
        out.append(float(evaluator.evaluate(net.space.parse_arch(arch))))
        if log and (i % 10 == 0 or i == len(archs)):
            log(f"  {checkpoint}: {i}/{len(archs)} archs evaluated ({time.time() - start:.0f}s)")
    return out


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


def _labels(paths: Sequence[str | Path]) -> list[str]:
    names = [supernet_run_dir(p).name or str(p) for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    if len(set(names)) < len(names):
        names = [f"{i}:{p}" for i, p in enumerate(paths)]
    return names


def rank_supernets(
    cfg: Config,
    checkpoints: Sequence[str | Path],
    groundtruth: str | Path | BenchmarkSpec,
    run_dir: str | Path,
    k: int | None = None,
    improvement_at: int = 10,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate the ground-truth archs on every supernet, score, write rank.json/predictions.csv/PNGs."""
    from supernet.analysis.plots import plot_heatmap, plot_improvement, plot_scatter

    if not checkpoints:
        raise ConfigError("give at least one --supernet")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    net, _ = load_supernet(Path(checkpoints[0]))
    space, identity = net.space, net.options.identity
    del net
    for ckpt in checkpoints[1:]:  # several supernets (e.g. before and after pruning): the archs all contain
        other, _ = load_supernet(Path(ckpt))
        space = common_space(space, other.space)
        del other
    truth = resolve_groundtruth(groundtruth, space, identity, log)
    archs, true, test = truth.archs, truth.accuracy, truth.test
    if len(archs) < 2:
        raise ConfigError(f"{groundtruth} lists {len(archs)} archs; ranking needs at least 2")
    k = M.default_k(len(archs)) if k is None else k
    if not 1 <= k <= len(archs):
        raise ConfigError(f"--topk must be in 1..{len(archs)}, got {k}")
    labels = _labels(checkpoints)
    arch_texts = [a.to_string() for a in archs]
    predictions: dict[str, list[float]] = {}
    supernets = []
    for label, ckpt in zip(labels, checkpoints):
        start = time.time()
        pred = predict(cfg, ckpt, arch_texts, log)
        predictions[label] = pred
        entry = {
            "label": label,
            "path": str(ckpt),
            "digest": checkpoint_digest(Path(ckpt)),
            "seconds": time.time() - start,
            **M.ranking_metrics(pred, true, k, improvement_at),
        }
        if all(t is not None for t in test):
            entry["vs_test"] = M.correlations(pred, test)  # type: ignore[arg-type]
        supernets.append(entry)
    out: dict[str, Any] = {
        "groundtruth": truth.source,
        "reference": truth.reference,
        "num_archs": len(archs),
        "k": k,
        "improvement_at": M.improvement_n(len(archs), improvement_at),
        "eval": asdict(cfg.eval),
        "supernets": supernets,
    }
    if len(checkpoints) > 1:
        out["self_consistency"] = {
            "labels": labels,
            **{m: M.self_consistency(predictions, m).tolist() for m in M.CORRELATIONS},
            "mean": {m: M.mean_off_diagonal(M.self_consistency(predictions, m)) for m in M.CORRELATIONS},
        }
    _write_predictions(run_dir / "predictions.csv", arch_texts, true, test, predictions)
    figures = [
        plot_scatter(predictions, true, run_dir / "rank_scatter.png", {s["label"]: s["kendall"] for s in supernets}),
        plot_improvement({s["label"]: s["improvement_curve"] for s in supernets}, run_dir / "rank_improvement.png"),
    ]
    if len(checkpoints) > 1:
        figures.append(
            plot_heatmap(
                M.self_consistency(predictions),
                labels,
                labels,
                run_dir / "rank_consistency.png",
                "self-consistency (Kendall tau)",
                vmin=-1,
                vmax=1,
            )
        )
    out["figures"] = [p.name for p in figures]
    atomic_write_text(run_dir / "rank.json", json.dumps(M.json_safe(out), indent=1))
    return out


def _write_predictions(
    path: Path, archs: list[str], true: list[float], test: list[float | None], predictions: dict[str, list[float]]
) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["arch", "accuracy", "test_accuracy", *[f"pred_{i}" for i in range(len(predictions))]])
    columns = list(predictions.values())
    for i, arch in enumerate(archs):
        w.writerow(
            [arch, f"{true[i]:.6f}", "" if test[i] is None else f"{test[i]:.6f}", *[f"{c[i]:.6f}" for c in columns]]
        )
    atomic_write_text(path, buf.getvalue())


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
