"""PAD-NAS progressive space pruning (Algorithm 1) as one resumable command, `supernet prune`.

Stage 1 trains the supernet. Each stage k = 2..M-1 searches the previous stage's supernet with
CES under the configured constraints (the latency window, or MACs/params bounds), counts each
layer's op frequencies over the networks of CES's final population (each once, however many
spellings it was evaluated in; `prune.frequency_from: archive`: every evaluated arch) whose
non-domination rank is below `prune.max_rank`, drops the ops chosen at or below `prune.threshold`
(never a layer's last op), builds the pruned supernet with the surviving weights copied bit for
bit, and fine-tunes it. Stage M searches the last supernet with CES and returns the best archs.

Run directory: `stage-<k>/` per stage (`checkpoints/` of the stage's supernet, `search/` of the
CES search that pruned it, `pruning.json` with frequencies and kept ops, `frequencies.png`),
`prune.json` (the summary, rewritten after each stage) and `space-size.png`. Every step is
idempotent and finds its finished output on disk, so a killed run resumes in its stage.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from supernet.config.schema import Config
from supernet.core.errors import ConfigError
from supernet.core.io import atomic_write_text
from supernet.core.logs import get_logger
from supernet.model.inherit import inherit_state
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace
from supernet.train.checkpoint import find_checkpoint

SUMMARY = "prune.json"
logger = get_logger(__name__)


# -- the pruning rule ---------------------------------------------------------------------------------------
def counted_archs(
    space: SearchSpace, ranks: Mapping[str, int], max_rank: int, network: Callable[[Arch], Hashable] | None = None
) -> list[Arch]:
    """The archs with non-domination rank < `max_rank`, one per network: spellings with the same `network`
    key (e.g. `SearchSpace.canonical` with skip identities) count once, as their best-ranked spelling
    (ties: the first in text order). Without `network`, every spelling is its own network."""
    key = network or (lambda arch: arch)
    chosen: dict[Hashable, Arch] = {}
    for text, rank in sorted(ranks.items(), key=lambda item: (item[1], item[0])):
        arch = space.parse_arch(text)
        if rank < max_rank:
            chosen.setdefault(key(arch), arch)
    return list(chosen.values())


def op_frequencies(
    space: SearchSpace, ranks: Mapping[str, int], max_rank: int, network: Callable[[Arch], Hashable] | None = None
) -> list[dict[str, float]]:
    """Per layer, each op's share of the networks with non-domination rank < `max_rank` (PAD-NAS 3.2),
    each counted once (`counted_archs`)."""
    chosen = counted_archs(space, ranks, max_rank, network)
    if not chosen:
        raise ConfigError(f"no searched arch has non-domination rank < {max_rank}; raise prune.max_rank")
    counts = [dict.fromkeys(layer.choices, 0) for layer in space.layers]
    for arch in chosen:
        for i, op in enumerate(arch.ops):
            counts[i][op] += 1
    return [{op: n / len(chosen) for op, n in row.items()} for row in counts]


def network_key(net: Any) -> Callable[[Arch], Hashable] | None:
    """How spellings of one network are told apart: with skip identities a chain space's spellings that
    differ only in where a stage's shape-keeping identities sit are one network (`SearchSpace.canonical`);
    an ELS identity computes something, so there every spelling is its own network (None)."""
    if net.space.topology == "chain" and net.options.identity == "skip":
        return net.space.canonical
    return None


def counted_ranks(result: Mapping[str, Any], source: str) -> dict[str, int]:
    """The archs whose ops are counted, with their non-domination ranks: the search's final
    population (`population`, PAD-NAS 3.2: the architectures after the search) or every arch it
    evaluated (`archive`)."""
    key = "population_ranks" if source == "population" else "ranks"
    ranks = result.get(key)
    if ranks is None:
        raise ConfigError(
            f"the CES result has no {key!r} (written by an older version?); "
            f"set prune.frequency_from={'archive' if source == 'population' else 'population'} or rerun the search"
        )
    return dict(ranks)


def kept_ops(space: SearchSpace, frequencies: Sequence[Mapping[str, float]], threshold: float) -> list[list[str]]:
    """Ops chosen more often than `threshold`; a layer whose ops all fall at or below it keeps its
    most frequent op (ties: the first in choice order)."""
    kept = []
    for layer, freq in zip(space.layers, frequencies, strict=True):
        ops = [op for op in layer.choices if freq[op] > threshold]
        kept.append(ops or [max(layer.choices, key=lambda op: freq[op])])
    return kept


# -- the stages ---------------------------------------------------------------------------------------------
def stage_epochs(cfg: Config, training_stage: int) -> tuple[int, float]:
    """(epochs, lr) of the 0-based training stage: `prune.epochs/lrs` scaled by `prune.epoch_scale`."""
    p = cfg.prune
    if training_stage >= min(len(p.epochs), len(p.lrs)):
        raise ConfigError(
            f"prune.stages={p.stages} trains {p.stages - 1} supernets; prune.epochs and prune.lrs "
            f"need that many entries (got {len(p.epochs)} and {len(p.lrs)})"
        )
    epochs, lr = p.epochs[training_stage], p.lrs[training_stage]
    if not isinstance(epochs, int) or epochs < 1 or not isinstance(lr, (int, float)) or not lr > 0:
        raise ConfigError(
            f"prune.epochs must be positive integers and prune.lrs positive numbers, got {epochs!r} and {lr!r}"
        )
    return max(1, round(epochs * p.epoch_scale)), float(lr)


def _stage_config(cfg: Config, training_stage: int) -> Config:
    stage = copy.deepcopy(cfg)
    stage.train.epochs, stage.train.lr = stage_epochs(cfg, training_stage)
    stage.search.strategy = "ces"
    return stage


def run_prune(cfg: Config, run_dir: Path, resume: bool = False) -> dict[str, Any]:
    """Run (or resume) all M stages (each logged at INFO); returns the summary also written to `run_dir/prune.json`."""
    from supernet.jobs.train import train_supernet
    from supernet.runs.load import load_supernet

    run_dir = Path(run_dir)
    _check(cfg, run_dir, resume)
    run_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "stages": [],
        "threshold": cfg.prune.threshold,
        "max_rank": cfg.prune.max_rank,
        "settings": prune_settings(cfg),
    }
    stage_dir = run_dir / "stage-1"
    logger.info(f"prune stage 1/{cfg.prune.stages}: train the supernet")
    train_supernet(_stage_config(cfg, 0), stage_dir, resume=_has_checkpoint(stage_dir))
    net, _ = load_supernet(stage_dir)
    summary["stages"].append(_stage_row(1, net.space, stage_dir))
    _write_summary(run_dir, summary)
    for k in range(2, cfg.prune.stages):
        logger.info(f"prune stage {k}/{cfg.prune.stages}: search, prune, fine-tune")
        parent_dir, stage_dir = stage_dir, run_dir / f"stage-{k}"
        pruning = _prune_step(_stage_config(cfg, k - 1), parent_dir, stage_dir)
        if not _finished(stage_dir, _stage_config(cfg, k - 1)):
            initial = None if _has_checkpoint(stage_dir) else _inherited(parent_dir, pruning["kept"])
            train_supernet(
                _stage_config(cfg, k - 1),
                stage_dir,
                resume=_has_checkpoint(stage_dir),
                choices=pruning["kept"],
                initial=initial,
            )
        net, _ = load_supernet(stage_dir)
        summary["stages"].append({**_stage_row(k, net.space, stage_dir), "pruned": pruning["pruned"]})
        _write_summary(run_dir, summary)
    last = run_dir / f"stage-{cfg.prune.stages}"
    logger.info(f"prune stage {cfg.prune.stages}/{cfg.prune.stages}: final search")
    result = _search(_stage_config(cfg, 0), stage_dir, last / "search")
    summary["final"] = {
        "supernet": str(stage_dir),
        "best": result["best"],
        "best_metrics": result["best_metrics"],
        "topk": result["topk"],
        "search": str(last / "search"),
    }
    _write_summary(run_dir, summary)
    _plot_sizes(run_dir, summary)
    return summary


def _check(cfg: Config, run_dir: Path, resume: bool) -> None:
    if cfg.prune.stages < 2:
        raise ConfigError(f"prune.stages must be >= 2 (train, then search), got {cfg.prune.stages}")
    stage_epochs(cfg, cfg.prune.stages - 2)  # enough epochs and lrs for every training stage
    if cfg.supernet.interchoice != "none":
        raise ConfigError("supernet prune copies op weights by name; it needs supernet.interchoice=none")
    if not resume and (run_dir / "stage-1").exists():
        raise ConfigError(
            f"{run_dir} already holds a prune run; pass --resume to continue it "
            f"or choose another --run-dir (nothing was overwritten)"
        )
    if resume:
        _check_same_settings(cfg, run_dir)


def prune_settings(cfg: Config) -> dict[str, Any]:
    """The `prune` section as plain JSON values: what a resumed run must share with the one it continues."""
    return json.loads(json.dumps(dataclasses.asdict(cfg.prune)))


def _check_same_settings(cfg: Config, run_dir: Path) -> None:
    """Refuse to resume a run whose `prune.json` recorded other prune settings: its finished stages were
    pruned and trained with those, and the summary would record the new ones beside them. A run killed
    before `prune.json` exists has used only stage 1's epochs and lr, which its checkpoint checks."""
    path = run_dir / SUMMARY
    if not path.is_file():
        return
    try:
        recorded = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path} to resume the prune run ({exc}); nothing was changed") from None
    if not isinstance(recorded, dict):
        raise ConfigError(f"{path} is not a prune summary (expected a JSON object); nothing was changed")
    before = recorded.get("settings")
    if not isinstance(before, dict):  # written before the settings were recorded
        before = {k: recorded[k] for k in ("threshold", "max_rank") if k in recorded}
    now = prune_settings(cfg)
    changed = [f"prune.{k}: {before[k]!r} -> {now[k]!r}" for k in now if k in before and before[k] != now[k]]
    if changed:
        raise ConfigError(
            f"cannot resume {run_dir} with other prune settings ({', '.join(changed)}); resume with the "
            f"run's own settings or choose another --run-dir (nothing was changed)"
        )


def _has_checkpoint(run_dir: Path) -> bool:
    return find_checkpoint(run_dir / "checkpoints") is not None


def _finished(stage_dir: Path, cfg: Config) -> bool:
    """Whether the stage's supernet has trained all its epochs."""
    from supernet.train.checkpoint import load_checkpoint

    path = find_checkpoint(stage_dir / "checkpoints")
    return path is not None and int(load_checkpoint(path).meta.get("epoch", 0)) >= cfg.train.epochs


def _search(cfg: Config, supernet_dir: Path, search_dir: Path) -> dict[str, Any]:
    """CES on `supernet_dir` into `search_dir` (resumed from its journal; reused once finished)."""
    from supernet.jobs.search import search_supernet

    done = search_dir / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    return search_supernet(cfg, supernet_dir, search_dir, resume=(search_dir / "journal.sqlite").exists())


def _prune_step(cfg: Config, parent_dir: Path, stage_dir: Path) -> dict[str, Any]:
    """Search the parent, count frequencies, choose the kept ops (`stage_dir/pruning.json`, reused)."""
    from supernet.runs.load import load_supernet

    record = stage_dir / "pruning.json"
    if record.is_file():
        return json.loads(record.read_text())
    result = _search(cfg, parent_dir, stage_dir / "search")
    parent, _ = load_supernet(parent_dir)
    space = parent.space
    ranks, network = counted_ranks(result, cfg.prune.frequency_from), network_key(parent)
    freq = op_frequencies(space, ranks, cfg.prune.max_rank, network)
    kept = kept_ops(space, freq, cfg.prune.threshold)
    pruned = [[op for op in layer.choices if op not in keep] for layer, keep in zip(space.layers, kept)]
    out = {
        "frequencies": freq,
        "kept": kept,
        "pruned": pruned,
        "parent_size": space.size,
        "size": math.prod(len(k) for k in kept),
        "frequency_from": cfg.prune.frequency_from,
        "archs_counted": len(counted_archs(space, ranks, cfg.prune.max_rank, network)),
    }
    _plot_frequencies(
        space,
        freq,
        stage_dir / "frequencies.png",
        f"{stage_dir.name}: op frequency (rank < {cfg.prune.max_rank}), {sum(map(len, pruned))} ops pruned",
    )
    atomic_write_text(record, json.dumps(out, indent=1))
    return out


def _inherited(parent_dir: Path, kept: list[list[str]]) -> dict[str, torch.Tensor]:
    from supernet.model.factory import build_supernet
    from supernet.runs.load import load_supernet

    parent, _ = load_supernet(parent_dir)
    child = build_supernet(parent.space.restrict(kept), parent.options)
    return inherit_state(parent.state_dict(), child, "pruned supernet")


def _stage_row(k: int, space: SearchSpace, stage_dir: Path) -> dict[str, Any]:
    return {
        "stage": k,
        "dir": str(stage_dir),
        "size": space.size,
        "log10_size": math.log10(space.size),
        "choices": [list(layer.choices) for layer in space.layers],
    }


def _write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    atomic_write_text(run_dir / SUMMARY, json.dumps(summary, indent=1))


# -- figures ------------------------------------------------------------------------------------------------
def _plot_frequencies(space: SearchSpace, freq: Sequence[Mapping[str, float]], path: Path, title: str) -> None:
    """PAD-NAS Fig. 3: layers x ops, each cell the op's frequency (blank: not in the layer)."""
    from supernet.analysis.plots import plot_heatmap

    ops = list(dict.fromkeys(op for layer in space.layers for op in layer.choices))
    matrix = np.full((space.num_layers, len(ops)), np.nan)
    for i, row in enumerate(freq):
        for op, value in row.items():
            matrix[i, ops.index(op)] = value
    plot_heatmap(matrix, [str(i) for i in range(space.num_layers)], ops, path, title, vmin=0.0, vmax=1.0, cmap="Blues")


def _plot_sizes(run_dir: Path, summary: Mapping[str, Any]) -> None:
    from supernet.core.extras import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    stages = [row["stage"] for row in summary["stages"]]
    ax.plot(stages, [row["log10_size"] for row in summary["stages"]], "o-")
    ax.set_xlabel("stage")
    ax.set_ylabel("log10(space size)")
    ax.set_xticks(stages)
    ax.set_title("search space size per stage")
    fig.tight_layout()
    fig.savefig(run_dir / "space-size.png", dpi=90)
    plt.close(fig)
