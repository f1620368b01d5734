"""Few-shot supernet training (Zhao et al., ICML 2021): after the one-shot supernet is trained, one
sub-supernet per op combination of `train.few_shot_layers`, each initialised from the one-shot weights
and fine-tuned `train.few_shot_epochs` epochs on its part of the space (`supernet.model.fewshot`).

Layout: `RUN/few-shot/part-<k>/` is an ordinary (restricted) supernet run per part; `RUN/few-shot/few-shot.json`
is written once every part is trained, and from then on `load_supernet(RUN)` returns the few-shot supernet,
so `search`, `rank`, `export` and `similarity` on RUN score each arch on its own part without being told.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supernet.config.schema import Config
from supernet.core.io import atomic_write_text
from supernet.core.rundir import CHECKPOINTS, FEW_SHOT, FEW_SHOT_MANIFEST
from supernet.model.factory import build_supernet
from supernet.model.fewshot import check_few_shot_layers, few_shot_parts, inherited_state, part_choices
from supernet.runs.load import checkpoint_path, file_digest


def part_config(cfg: Config) -> Config:
    """A part's training: `few_shot_epochs` at `few_shot_lr` (default: `train.lr`, a warm restart), no warm-up."""
    t = cfg.train
    train = dataclasses.replace(
        t,
        epochs=t.few_shot_epochs,
        lr=t.few_shot_lr or t.lr,
        warmup_steps=0,
        warmup_epochs=0.0,
        few_shot_layers=[],
    )
    return dataclasses.replace(cfg, train=train)


def train_few_shot(
    cfg: Config, run_dir: Path, net: Any, train_supernet: Callable[..., dict[str, Any]], splits: Any = None
) -> list[dict[str, Any]]:
    """Train every part of the split from `net` (the trained one-shot supernet) with `train_supernet`
    (`supernet.jobs.train.train_supernet`, passed in: it calls this); resumes finished or interrupted parts
    from their own checkpoints. Returns one summary per part."""
    layers = list(cfg.train.few_shot_layers)
    check_few_shot_layers(net.space, layers, cfg.supernet.canonical)
    root = Path(run_dir) / FEW_SHOT
    state = net.state_dict()
    sub_cfg = part_config(cfg)
    results = []
    for k, ops in enumerate(few_shot_parts(net.space, layers)):
        part_dir = root / f"part-{k}"
        choices = part_choices(net.space, layers, ops)
        initial = inherited_state(state, build_supernet(net.space.restrict(choices), net.options))
        resume = (part_dir / CHECKPOINTS).is_dir()
        out = train_supernet(sub_cfg, part_dir, resume=resume, choices=choices, initial=initial, splits=splits)
        digest = file_digest(checkpoint_path(part_dir))
        results.append({"ops": list(ops), "dir": part_dir.name, "digest": digest, "global_step": out["global_step"]})
    parts = [{"ops": r["ops"], "dir": r["dir"], "digest": r["digest"]} for r in results]
    manifest = {"layers": layers, "epochs": sub_cfg.train.epochs, "lr": sub_cfg.train.lr, "parts": parts}
    atomic_write_text(root / FEW_SHOT_MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return results
