"""The main job: train a supernet, search it under a budget, export the winner, retrain it, report."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from supernet.config.schema import Config, save_config
from supernet.core.io import atomic_write_text
from supernet.core.logs import get_logger
from supernet.core.rundir import CONFIG, RESULT
from supernet.data import DatasetSplits
from supernet.jobs.export import export_path, load_exported
from supernet.jobs.retrain import train_standalone
from supernet.jobs.search import check_accuracy_bar, search_supernet
from supernet.jobs.train import train_supernet
from supernet.model.bn import recalibrate_path
from supernet.model.protocol import SupernetModel
from supernet.runs.build import (
    EVAL_BATCH_SIZE,
    STANDALONE_SECTIONS,
    SUPERNET_SECTIONS,
    check_run,
    eval_loader,
    load_data,
    recal_batches,
    recal_reset,
    runtime_of,
)
from supernet.runs.load import load_supernet
from supernet.space import Arch
from supernet.train.loop import accuracy

logger = get_logger(__name__)
EXPORT_DONE = "pipeline-export.json"  # written last by the export stage: the arch and both test accuracies
EXPORT_ACCURACIES = ("one_shot_test_acc", "exported_inherited_test_acc")


def run_pipeline(cfg: Config, run_dir: Path, resume: bool = False) -> dict[str, Any]:
    """Each stage writes into its own sub-folder of `run_dir`; with `resume`, finished stages are kept.

    The data is loaded once and the trained supernet once after the search (the search loads its own);
    both are passed on to the stages that need them.
    """
    run_dir = Path(run_dir)
    check_accuracy_bar(cfg)  # the search's, before an hour of training
    check_run(run_dir / "supernet", cfg, resume, SUPERNET_SECTIONS)  # refuse before config.yaml is written
    check_run(run_dir / "standalone", cfg, resume, STANDALONE_SECTIONS)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / CONFIG)
    start = time.time()
    stages: dict[str, Any] = {}
    splits = load_data(cfg)
    t = time.time()
    trained = train_supernet(cfg, run_dir / "supernet", resume=resume, splits=splits)
    stages["train"] = {"seconds": time.time() - t, "epochs": trained["epochs"]}
    search = _search(cfg, run_dir, resume, splits)
    net, meta = load_supernet(run_dir / "supernet")
    best = net.space.parse_arch(search["best"])
    exported = _export(cfg, run_dir / "export", net, meta, best, splits, resume)
    t = time.time()
    retrained = train_standalone(
        cfg, run_dir / "standalone", net.space, best, net.options.identity, resume=resume, splits=splits
    )
    stages["standalone"] = {"seconds": time.time() - t}
    summary = {
        "best": search["best"],
        "best_metrics": search["best_metrics"],
        "search_seconds": search["seconds"],
        "evaluations": search["evaluations"],
        **exported,
        "retrained": retrained,
        "stages": stages,
        "seconds": time.time() - start,
    }
    summary["report"] = _report(summary, len(splits.train.classes))  # class names: metadata, no pass over images
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=1))
    atomic_write_text(run_dir / "report.md", summary["report"] + "\n")
    return summary


def _search(cfg: Config, run_dir: Path, resume: bool, splits: DatasetSplits) -> dict[str, Any]:
    result = run_dir / "search" / RESULT
    if resume and result.exists():
        return json.loads(result.read_text())
    return search_supernet(cfg, run_dir / "supernet", run_dir / "search", resume=resume, splits=splits)


def _export(
    cfg: Config,
    export_dir: Path,
    net: SupernetModel,
    meta: dict[str, Any],
    best: Arch,
    splits: DatasetSplits,
    resume: bool,
) -> dict[str, float]:
    """The export stage: the supernet path's test accuracy (BN recalibrated), the export of that path and the
    exported model's test accuracy, recorded last in `EXPORT_DONE`; with `resume`, a finished export of the same
    arch is kept and its accuracies read back (a record that does not read as one is redone)."""
    done = export_dir / EXPORT_DONE
    if resume and all((export_dir / name).is_file() for name in ("model.json", "weights.pt")):
        kept = _finished_export(done, best)
        if kept is not None:
            logger.info(f"pipeline: export of {best.to_string()} kept ({export_dir})")
            return kept
    one_shot = _one_shot_accuracy(cfg, net, best, splits)
    export_path(net, meta, best, export_dir)  # the path's BN as recalibrated for `one_shot`
    accuracies = {
        "one_shot_test_acc": one_shot,
        "exported_inherited_test_acc": _exported_accuracy(cfg, export_dir, splits),
    }
    atomic_write_text(done, json.dumps({"arch": best.to_string(), **accuracies}, indent=1))
    return accuracies


def _finished_export(done: Path, best: Arch) -> dict[str, float] | None:
    """The accuracies a finished export of `best` recorded, or None (none, another arch's, or unreadable)."""
    try:
        record = json.loads(done.read_text())
        accuracies = {k: float(record[k]) for k in EXPORT_ACCURACIES}
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError):
        return None
    if record.get("arch") != best.to_string() or not all(0.0 <= v <= 1.0 for v in accuracies.values()):
        return None
    return accuracies


def _one_shot_accuracy(cfg: Config, net: SupernetModel, arch: Arch, splits: DatasetSplits) -> float:
    """Test accuracy of the arch's path in the supernet (inherited weights, BN recalibrated as in search).
    Recalibrates the path's BatchNorms of `net` in place."""
    runtime = runtime_of(cfg)
    net = runtime.prepare(net)
    recalibrate_path(net, arch, recal_batches(cfg, splits), recal_reset(cfg, net), runtime)
    net.eval()
    with torch.no_grad():
        return accuracy(lambda x: net(x, arch), eval_loader(cfg, splits, "test", EVAL_BATCH_SIZE), runtime)


def _exported_accuracy(cfg: Config, export_dir: Path, splits: DatasetSplits) -> float:
    """Test accuracy of the exported model as written (inherited weights, the path's recalibrated BN):
    the same function as the supernet path, so it agrees with `_one_shot_accuracy`."""
    runtime = runtime_of(cfg)
    model = runtime.prepare(load_exported(export_dir)).eval()
    with torch.no_grad():
        return accuracy(model, eval_loader(cfg, splits, "test", EVAL_BATCH_SIZE), runtime)


def _report(s: dict[str, Any], num_classes: int) -> str:
    m = s["best_metrics"]
    r = s["retrained"]
    return "\n".join(
        [
            "supernet pipeline report",
            f"  best arch          {s['best']}",
            f"  MACs / params      {m.get('macs', 0) / 1e6:.2f}M / {m.get('params', 0) / 1e6:.3f}M",
            f"  supernet val acc   {m.get('accuracy', float('nan')):.4f}  ({s['evaluations']} archs evaluated in "
            f"{s['search_seconds']:.0f}s)",
            f"  supernet path      test acc {s['one_shot_test_acc']:.4f}  (inherited weights, BN recalibrated)",
            f"  exported model     test acc {s['exported_inherited_test_acc']:.4f}  (same weights, before retraining)",
            f"  exported, retrained test acc {r['test_acc']:.4f}  "
            f"(val {r['val_acc']:.4f}; chance {1 / num_classes:.4f})",
            f"  total time         {s['seconds']:.0f}s",
        ]
    )
