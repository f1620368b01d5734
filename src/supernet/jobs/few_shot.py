"""Few-shot supernet training (Zhao et al., ICML 2021): after the one-shot supernet is trained, one
sub-supernet per op combination of `train.few_shot_layers`, each initialised from the one-shot weights
and fine-tuned on its part of the space (`supernet.model.fewshot`); `part_config`: by default half the
one-shot epochs, restarting the schedule at `train.lr` without warm-up, as the authors' code does.

Layout: `RUN/few-shot/part-<k>/` is an ordinary (restricted) supernet run per part; `RUN/few-shot/few-shot.json`
is written once every part is trained, and from then on `load_supernet(RUN)` returns the few-shot supernet,
so `search`, `rank`, `export` and `similarity` on RUN score each arch on its own part without being told.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supernet.config.schema import Config, TrainConfig
from supernet.core.io import atomic_write_text
from supernet.core.rundir import CHECKPOINTS, FEW_SHOT, FEW_SHOT_MANIFEST
from supernet.model.factory import build_supernet
from supernet.model.fewshot import check_few_shot_layers, few_shot_parts, part_choices
from supernet.model.inherit import inherit_state
from supernet.runs.load import checkpoint_path, file_digest

FEW_SHOT_EPOCH_FRACTION = 0.5
"""A part's epochs as a fraction of the one-shot supernet's when `train.few_shot_epochs` is unset: the few-shot
NAS code (github.com/aoiang/few-shot-NAS, NAS-Bench-201 configs) trains the one-shot supernet 600 epochs and
each sub-supernet 300, from the one-shot weights with a new optimizer and a new cosine schedule at the same lr
(0.025), no warm-up."""


def part_epochs(train: TrainConfig) -> int:
    """`train.few_shot_epochs`, or half of `train.epochs` (rounded up) where it is unset."""
    if train.few_shot_epochs is not None:
        return train.few_shot_epochs
    return max(1, math.ceil(train.epochs * FEW_SHOT_EPOCH_FRACTION))


def part_config(cfg: Config) -> Config:
    """A part's training (Zhao et al.'s fine-tuning schedule): `part_epochs` at `few_shot_lr` (default
    `train.lr`: a warm restart of the one-shot schedule), no warm-up."""
    t = cfg.train
    train = dataclasses.replace(
        t,
        epochs=part_epochs(t),
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
        initial = inherit_state(state, build_supernet(net.space.restrict(choices), net.options), "few-shot part")
        resume = (part_dir / CHECKPOINTS).is_dir()
        out = train_supernet(sub_cfg, part_dir, resume=resume, choices=choices, initial=initial, splits=splits)
        digest = file_digest(checkpoint_path(part_dir))
        results.append({"ops": list(ops), "dir": part_dir.name, "digest": digest, "global_step": out["global_step"]})
    parts = [{"ops": r["ops"], "dir": r["dir"], "digest": r["digest"]} for r in results]
    manifest = {"layers": layers, "epochs": sub_cfg.train.epochs, "lr": sub_cfg.train.lr, "parts": parts}
    atomic_write_text(root / FEW_SHOT_MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return results
