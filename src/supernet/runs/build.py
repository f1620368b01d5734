"""From a run config to the objects the verbs need: data splits, the space, loaders, evaluation batches,
and the checks and set-up of a training run directory.

Shared by the verbs (`workflow`) and the studies (`analysis`); it reads the config, never the CLI.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from supernet.config.schema import Config, save_config
from supernet.data import (
    Augmentation,
    BatchLoader,
    DatasetSplits,
    SampleTransform,
    StreamingLoader,
    StreamPolicy,
    default_augmentation,
    load_splits,
    subset,
)
from supernet.data.augment import augmentation_family
from supernet.core.device import Runtime, runtime_for
from supernet.core.errors import CheckpointError, ConfigError
from supernet.model.bn import default_recal_reset
from supernet.model.protocol import SupernetModel
from supernet.core.rundir import CHECKPOINTS, CONFIG
from supernet.space import SearchSpace, create_space
from supernet.train.checkpoint import (
    find_checkpoint,
    load_checkpoint,
    remove_stale_temporaries,
    require_previous,
)

if TYPE_CHECKING:
    from supernet.search.supernet_evaluator import SupernetEvaluator

EVAL_BATCH_SIZE = 500
"""Batch size of final (test/val) accuracy passes: no gradients, so larger than training batches."""


def load_data(cfg: Config) -> DatasetSplits:
    data = cfg.data
    extra = {
        k: v
        for k, v in (
            ("resolution", data.resolution),
            ("channels", data.channels),
            ("max_per_class", data.max_per_class),
        )
        if data.name == "folder" and v is not None
    }
    val_size: int | float = int(data.val_size) if data.val_size >= 1 else data.val_size
    stats = _sample_transform(cfg, data.channels) if data.resolution is not None else None
    return load_splits(
        data.name,
        data.root,
        val_size=val_size,
        seed=data.split_seed,
        train_limit=data.train_limit,
        val_per_class=data.val_per_class,
        policy=StreamPolicy(data.stream, data.memory_limit_mb << 20),
        stats_transform=stats,
        **extra,
        **data.options,
    )


def build_space(cfg: Config, splits: DatasetSplits | None = None) -> SearchSpace:
    """The configured space, with input channels, classes and resolution taken from the data."""
    options = dict(cfg.space.options)
    if splits is not None:
        channels, height, _ = splits.image_shape
        found = {"input_channels": channels, "num_classes": splits.num_classes, "resolution": height}
        for key, value in found.items():
            if key in options and options[key] != value:
                raise ConfigError(f"space.options.{key}={options[key]} does not match the data ({value})")
            options[key] = value
    return create_space(cfg.space.name, preset=cfg.space.preset, **options)


Loader = BatchLoader | StreamingLoader


def _sample_transform(cfg: Config, channels: int) -> SampleTransform:
    data = cfg.data
    if data.resolution is None:
        raise ConfigError("streaming data needs data.resolution (the crop size, e.g. 224)")
    return SampleTransform(data.resolution, channels, scale=(data.crop_scale_min, 1.0), eval_crop=data.eval_crop)


def _workers(cfg: Config) -> int:
    import os

    return cfg.data.workers if cfg.data.workers is not None else min(8, os.cpu_count() or 1)


def train_loader(
    cfg: Config, splits: DatasetSplits, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
) -> Loader:
    """Shuffled, augmented training batches, sharded over `world_size` ranks; the same order in memory or streamed."""
    if splits.streaming:
        return StreamingLoader(
            splits.train,
            batch_size,
            _sample_transform(cfg, splits.train.channels),
            Augmentation(splits.mean, splits.std),
            shuffle=True,
            seed=seed,
            drop_last=True,
            train=True,
            rank=rank,
            world_size=world_size,
            workers=_workers(cfg),
        )
    aug = default_augmentation(
        augmentation_family(cfg.data.name), splits.mean, splits.std, train=True, resolution=cfg.data.resolution
    )
    return BatchLoader(
        splits.train,
        batch_size,
        shuffle=True,
        seed=seed,
        drop_last=True,
        transform=aug,
        rank=rank,
        world_size=world_size,
    )


def require_batches(loader: BatchLoader, field: str) -> BatchLoader:
    """A training loader with at least one full batch (it drops the last, short one)."""
    if len(loader) == 0:
        ranks = f" x {loader.world_size} processes" if loader.world_size > 1 else ""
        raise ConfigError(
            f"{field}={loader.batch_size}{ranks} is larger than the training split "
            f"({len(loader.dataset)} images): not one full batch; lower {field}"
        )
    return loader


def recal_batches(cfg: Config, splits: DatasetSplits) -> list[torch.Tensor]:
    """The fixed, seeded training batches (train-time augmentation) used for BN recalibration."""
    evaluation = cfg.eval
    loader = require_batches(
        train_loader(cfg, splits, evaluation.recal_batch_size, evaluation.seed), "eval.recal_batch_size"
    )
    return [x for _, (x, _) in zip(range(min(evaluation.recal_batches, len(loader))), loader.iter_epoch(0))]


def recal_reset(cfg: Config, net: SupernetModel | None = None) -> bool:
    """`eval.recal_reset`, or when unset the default of the supernet's method (`default_recal_reset` of
    `net`'s options where given: a config may describe another supernet than the one scored)."""
    if cfg.eval.recal_reset is not None:
        return cfg.eval.recal_reset
    return default_recal_reset((net.options if net is not None else cfg.supernet).interchoice)


def eval_settings(cfg: Config) -> dict[str, Any]:
    """The `eval` section as it acts: `recal_reset` resolved for the method. What search results, journals
    and their cache keys record, so that an unset `recal_reset` and its explicit value are one estimator."""
    return {**asdict(cfg.eval), "recal_reset": recal_reset(cfg)}


def val_batches(cfg: Config, splits: DatasetSplits) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The validation batches candidates are scored on (the first `eval.val_limit` images)."""
    return list(eval_loader(cfg, splits, "val", cfg.eval.val_batch_size, cfg.eval.val_limit))


def eval_loader(cfg: Config, splits: DatasetSplits, which: str, batch_size: int, limit: int | None = None) -> Loader:
    dataset = getattr(splits, which)
    if limit is not None and limit < len(dataset):
        dataset = subset(dataset, torch.arange(limit))
    if splits.streaming:
        return StreamingLoader(
            dataset,
            batch_size,
            _sample_transform(cfg, dataset.channels),
            Augmentation(splits.mean, splits.std),
            workers=_workers(cfg),
        )
    aug = default_augmentation(augmentation_family(cfg.data.name), splits.mean, splits.std, train=False)
    return BatchLoader(dataset, batch_size, shuffle=False, transform=aug)


# How a run executes, not what it computes: a checkpoint resumes under other values of these
# (a GPU run in fp16 resumes on a CPU in bf16 or fp32).
# Decode processes (`data.workers`) change speed, never a batch.
# `few_shot_max_parts` is a guard, not a setting: raising it to force a large split changes nothing trained.
EXECUTION_FIELDS = (
    "progress",
    "workers",
    "amp",
    "channels_last",
    "deterministic",
    "allreduce_bucket_mb",
    "few_shot_max_parts",
)


# fields added after checkpoints were made: left out of the hash while they hold their default, so a
# checkpoint trained before they existed still resumes
ADDED_FIELDS: dict[str, dict[str, Any]] = {"train": {"pairwise_rank_weight": 0.0}}


def config_hash(cfg: Config, sections: tuple[str, ...]) -> str:
    """Hash of the config sections a checkpoint depends on (execution settings excluded)."""
    blob = {s: asdict(getattr(cfg, s)) for s in sections}
    for name, section in blob.items():
        for field_name in EXECUTION_FIELDS:
            section.pop(field_name, None)
        for field_name, default in ADDED_FIELDS.get(name, {}).items():
            if field_name in section and section[field_name] == default:
                section.pop(field_name)
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]


def runtime_of(cfg: Config, section: Any | None = None) -> Runtime:
    """The device (`cfg.device`), autocast and memory format a verb runs with; `section` is the
    training section whose `amp`/`channels_last`/`deterministic` apply (default `cfg.train`, which
    also governs supernet evaluation)."""
    s = section if section is not None else cfg.train
    name = "standalone" if s is cfg.standalone else "train"
    return runtime_for(cfg.device, s.amp, s.channels_last, s.deterministic, name)


SUPERNET_SECTIONS = ("data", "space", "supernet", "train")
STANDALONE_SECTIONS = ("data", "standalone")


def config_sections(cfg: Config, sections: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The sections a checkpoint depends on, as plain JSON values (execution settings excluded)."""
    blob = {s: asdict(getattr(cfg, s)) for s in sections}
    for section in blob.values():
        for name in EXECUTION_FIELDS:
            section.pop(name, None)
    return json.loads(json.dumps(blob, default=str))


def check_run(
    run_dir: Path,
    cfg: Config,
    resume: bool,
    sections: tuple[str, ...],
    fallback: bool = False,
    flags: tuple[str, str] = ("--resume", "--run-dir"),
) -> None:
    """Refuse, before anything is written, a run directory that holds a training run we must not touch:
    without `resume` any checkpoint; with `resume` a checkpoint made with another config (the error
    names the fields that differ). An unreadable checkpoint is left to the resume that reports it.
    `flags`: how the caller spells resume and the run directory (the Python API: `resume=True`, `run_dir`)."""
    ckpt_dir = run_dir / CHECKPOINTS
    resume_flag, dir_flag = flags
    if not resume and find_checkpoint(ckpt_dir) is not None:
        raise CheckpointError(
            f"{run_dir} already holds a training run; pass {resume_flag} to continue it "
            f"or choose another {dir_flag} (nothing was overwritten)"
        )
    if resume and fallback:
        require_previous(ckpt_dir)
    found = find_checkpoint(ckpt_dir, fallback) if resume else None
    if found is None:
        return
    try:
        meta = load_checkpoint(found).meta
    except CheckpointError:
        return
    if meta.get("config_hash") in (None, config_hash(cfg, sections)):
        return
    before = meta.get("config") or _saved_config(run_dir / CONFIG, sections)
    changed = _changed_fields(before, config_sections(cfg, sections)) if before else []
    what = ", ".join(changed) if changed else "the config differs from the one it was trained with"
    raise CheckpointError(
        f"cannot resume {run_dir} with another config ({what}); resume with the run's own "
        f"config or choose another {dir_flag} (nothing was written)"
    )


def _saved_config(path: Path, sections: tuple[str, ...]) -> dict[str, Any] | None:
    """The run's config.yaml (written when training started), or None if it is missing or unreadable."""
    from supernet.config.schema import load_config

    try:
        return config_sections(load_config(path), sections)
    except (ConfigError, OSError):
        return None


def _changed_fields(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    changed = []
    for section, fields in now.items():
        old = before.get(section) or {}
        for name, value in fields.items():
            if name in old and old[name] != value:
                changed.append(f"{section}.{name}: {old[name]!r} -> {value!r}")
    return changed


def start_run(run_dir: Path, cfg: Config) -> None:
    """Create the run directory and record the config (only once every check has passed)."""
    ckpt_dir = run_dir / CHECKPOINTS
    if ckpt_dir.exists():
        remove_stale_temporaries(ckpt_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / CONFIG)


def build_evaluator(cfg: Config, net: SupernetModel, splits: DatasetSplits) -> SupernetEvaluator:
    """Fixed recalibration batches (train data, train-time augmentation, seeded) and validation batches,
    evaluated on the configured device under `train.amp`."""
    from supernet.search.supernet_evaluator import SupernetEvaluator

    return SupernetEvaluator(
        net,
        recal_batches(cfg, splits) if cfg.eval.bn == "recalibrate" else [],
        val_batches(cfg, splits),
        recal_reset(cfg, net),
        runtime_of(cfg),
        twins=cfg.eval.twins,
        bn=cfg.eval.bn,
        metric=cfg.eval.metric,
    )
