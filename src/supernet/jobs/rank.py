"""The `rank` verb: score ground-truth archs with trained supernets and rank them.

What it writes and the pure pieces (ground truth, common space, the printed table) are in
`supernet.analysis.ranking`."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from supernet.analysis import metrics as M
from supernet.analysis.benchmark import BenchmarkSpec
from supernet.analysis.ranking import common_space, resolve_groundtruth
from supernet.config.schema import Config
from supernet.core.errors import ConfigError
from supernet.core.io import atomic_write_text
from supernet.core.logs import get_logger
from supernet.runs.load import (
    checkpoint_digest,
    checkpoint_path,
    load_supernet,
    supernet_run_dir,
    trained_config,
)
from supernet.space import Arch

logger = get_logger(__name__)

RANK_CHUNK = 20  # archs scored together on their prefix tree, then written to the evaluation cache


def predict(
    cfg: Config,
    checkpoint: str | Path,
    archs: Sequence[Arch | str],
    run_dir: Path | None = None,
) -> list[float]:
    """Supernet accuracy of each arch (BN recalibrated per `cfg.eval`), on the supernet's own data.

    Scores come from, and go to, the evaluation cache beside the checkpoint that `search` keeps (same key:
    checkpoint digest and evaluation settings; in `run_dir` where that folder is read-only, none without
    one), so a stopped `rank` resumes and `rank` and `search` reuse each other's scores. The missing archs
    are scored in prefix order, `RANK_CHUNK` at a time on their prefix tree, each chunk cached when done."""
    from supernet.search import Journal

    net, meta = load_supernet(Path(checkpoint))
    cfg = trained_config(cfg, meta)  # evaluate on the data the supernet was trained on
    parsed = [net.space.parse_arch(a) for a in archs]
    path, key = evaluation_cache(cfg, Path(checkpoint), run_dir)
    with contextlib.ExitStack() as stack:
        journal = stack.enter_context(Journal(path)) if path is not None else None
        known = {a: m["accuracy"] for a, m in (journal.lookup(key, net.space) if journal else {}).items()}
        missing = sorted({a for a in parsed if a not in known}, key=lambda a: a.ops)
        if len(missing) < len(set(parsed)):
            logger.info(f"  {checkpoint}: {len(set(parsed)) - len(missing)} archs scored earlier ({path})")
        if missing:
            known.update(_score_missing(cfg, net, missing, journal, key, str(checkpoint)))
    return [float(known[a]) for a in parsed]


def evaluation_cache(cfg: Config, checkpoint: Path, run_dir: Path | None = None) -> tuple[Path | None, str]:
    """The evaluation cache `predict` reads and writes for `checkpoint` (None: none) and the key its scores
    under `cfg`'s evaluation settings are kept under (`cfg`: with the supernet's own data section)."""
    from supernet.jobs.search import _evaluation_key

    return _cache_path(checkpoint, run_dir), _evaluation_key(cfg, checkpoint)


def _cache_path(checkpoint: Path, run_dir: Path | None) -> Path | None:
    from supernet.jobs.search import _evaluation_cache, writable_dir

    folder = checkpoint_path(checkpoint).parent
    if run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        return _evaluation_cache(folder, Path(run_dir))
    return folder / "eval-cache.sqlite" if writable_dir(folder) else None


def _score_missing(
    cfg: Config, net: Any, missing: list[Arch], journal: Any, key: str, checkpoint: str
) -> dict[Arch, float]:
    from supernet.runs.build import build_evaluator, load_data

    evaluator = build_evaluator(cfg, net, load_data(cfg))
    found: dict[Arch, float] = {}
    start = time.time()
    for i in range(0, len(missing), RANK_CHUNK):
        chunk = missing[i : i + RANK_CHUNK]
        for arch, score in zip(chunk, evaluator.evaluate_many(chunk), strict=True):
            found[arch] = float(score)
            if journal is not None:
                journal.record(key, arch, {"accuracy": float(score)})
        logger.info(f"  {checkpoint}: {len(found)}/{len(missing)} archs evaluated ({time.time() - start:.0f}s)")
    return found


def rank_supernets(
    cfg: Config,
    checkpoints: Sequence[str | Path],
    groundtruth: str | Path | BenchmarkSpec,
    run_dir: str | Path,
    k: int | None = None,
    improvement_at: int = 10,
) -> dict[str, Any]:
    """Evaluate the ground-truth archs on every supernet, score, write rank.json/predictions.csv/PNGs."""
    from supernet.analysis.plots import figures_available

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
    truth = resolve_groundtruth(groundtruth, space, identity)
    archs, true, test = truth.archs, truth.accuracy, truth.test
    if len(archs) < 2:
        source = groundtruth.describe() if isinstance(groundtruth, BenchmarkSpec) else str(groundtruth)
        number = f"{len(archs)} arch" + ("" if len(archs) == 1 else "s")
        raise ConfigError(f"{source} gives {number} in the supernet's space; ranking needs at least 2")
    k = M.default_k(len(archs)) if k is None else k
    if not 1 <= k <= len(archs):
        raise ConfigError(f"--topk must be in 1..{len(archs)}, got {k}")
    labels = supernet_labels(checkpoints)
    arch_texts = [a.to_string() for a in archs]
    predictions: dict[str, list[float]] = {}
    supernets = []
    for label, ckpt in zip(labels, checkpoints):
        start = time.time()
        pred = predict(cfg, ckpt, arch_texts, run_dir=run_dir)
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
    figures = _figures(run_dir, predictions, true, supernets, labels) if figures_available("rank") else []
    out["figures"] = [p.name for p in figures]
    atomic_write_text(run_dir / "rank.json", json.dumps(M.json_safe(out), indent=1))
    return out


def _figures(
    run_dir: Path,
    predictions: dict[str, list[float]],
    true: Sequence[float],
    supernets: list[dict[str, Any]],
    labels: list[str],
) -> list[Path]:
    """The scatter, the improvement curves and, with several supernets, their self-consistency heatmap."""
    from supernet.analysis.plots import plot_heatmap, plot_improvement, plot_scatter

    figures = [
        plot_scatter(predictions, true, run_dir / "rank_scatter.png", {s["label"]: s["kendall"] for s in supernets}),
        plot_improvement({s["label"]: s["improvement_curve"] for s in supernets}, run_dir / "rank_improvement.png"),
    ]
    if len(supernets) > 1:
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
    return figures


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


def supernet_labels(paths: Sequence[str | Path]) -> list[str]:
    names = [supernet_run_dir(p).name or str(p) for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    if len(set(names)) < len(names):
        names = [f"{i}:{p}" for i, p in enumerate(paths)]
    return names
