"""The `train` verb: train a supernet from a run config (few-shot parts after the one-shot stage)."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from supernet.config.schema import Config, options_of
from supernet.core.errors import ConfigError
from supernet.core.events import require_tensorboard
from supernet.core.logs import get_logger
from supernet.core.plugins import describe as describe_imports
from supernet.data import DatasetSplits
from supernet.model.factory import build_supernet
from supernet.model.fewshot import check_few_shot_layers
from supernet.runs.build import (
    SUPERNET_SECTIONS,
    build_space,
    check_run,
    config_hash,
    config_sections,
    load_data,
    recal_batches,
    recal_reset,
    require_batches,
    runtime_of,
    start_run,
    train_loader,
    val_batches,
)
from supernet.train.loop import ONE_PATH_RANKED
from supernet.train.sampler import SAMPLERS, create_sampler, draw_paths, step_rng
from supernet.train.wiring import supernet_meta, supernet_trainer

if TYPE_CHECKING:
    from supernet.space import SearchSpace

logger = get_logger(__name__)


# -- supernet training ----------------------------------------------------------------------------
def _announce_few_shot(cfg: Config, space: SearchSpace) -> None:
    """Check the few-shot split before the first step (a bad one used to surface only after the one-shot
    training, losing it) and say on stderr how many parts it makes."""
    train = cfg.train
    layers = list(train.few_shot_layers)
    count = check_few_shot_layers(space, layers, cfg.supernet.canonical, train.few_shot_max_parts)
    logger.info(
        f"few-shot: layers {layers} split the space into {count} parts, each fine-tuned "
        f"{train.few_shot_epochs} epoch(s) after the one-shot training"
    )


def train_supernet(
    cfg: Config,
    run_dir: Path,
    resume: bool = False,
    fallback: bool = False,
    choices: list[list[str]] | None = None,
    initial: dict[str, Any] | None = None,
    splits: DatasetSplits | None = None,
) -> dict[str, Any]:
    """Train a supernet with the configured sampler; checkpoints every epoch into `run_dir`.

    `choices` restricts the configured space to those ops per layer (a pruned space, recorded in
    the checkpoint as `space_choices`); `initial` is a state dict to start from (PAD-NAS's
    inherited weights) unless the run resumes from its own checkpoint.

    Under torchrun (WORLD_SIZE > 1) every rank trains on its shard of each global batch, gradients
    are averaged over the ranks (`supernet.train.distributed`), and rank 0 writes the run directory.
    """
    from supernet.train.distributed import init_distributed
    from supernet.train.hooks import HealthProbe, SplitHook

    run_dir = Path(run_dir)
    require_tensorboard(cfg.log.tensorboard)
    runtime = runtime_of(cfg)
    dist = init_distributed(runtime.device, cfg.train.allreduce_bucket_mb)
    check_run(run_dir, cfg, resume, SUPERNET_SECTIONS, fallback)
    torch.manual_seed(cfg.train.seed)
    splits = splits if splits is not None else load_data(cfg)
    space = build_space(cfg, splits)
    if choices is not None:
        space = space.restrict(choices)
    options = cfg.supernet
    train = cfg.train
    if options.interchoice != "none" and train.sampler == "path-dropout":
        raise ConfigError("train.sampler=path-dropout runs several ops per layer; it needs supernet.interchoice=none")
    if train.few_shot_layers and options.interchoice != "none":
        raise ConfigError("train.few_shot_layers needs supernet.interchoice=none (parts inherit weights by name)")
    if train.distill and train.sampler != "sandwich":
        raise ConfigError(
            f"train.distill needs train.sampler=sandwich (its largest path teaches the others), got {train.sampler!r}"
        )
    if train.pairwise_rank_weight and (train.distill or train.sampler == "path-dropout"):
        raise ConfigError(
            "train.pairwise_rank_weight ranks whole paths by their cross-entropy: it cannot be combined with "
            f"train.distill or train.sampler=path-dropout (got distill={train.distill}, sampler={train.sampler!r})"
        )
    if train.few_shot_layers and choices is None:
        _announce_few_shot(cfg, space)
    net = runtime.prepare(build_supernet(space, options))
    sampler_options = options_of(SAMPLERS.get(train.sampler).options, train.sampler_options, "train.sampler_options")
    sampler = create_sampler(train.sampler, space, identity=options.identity, **sampler_options)
    seed = train.seed
    if train.pairwise_rank_weight and len(draw_paths(sampler, step_rng(seed, 0, 0), 0.0)) < 2:
        raise ConfigError(ONE_PATH_RANKED)  # before the run directory is made
    meta = {
        **supernet_meta(space, options, describe_imports(cfg.imports)),
        "config_hash": config_hash(cfg, SUPERNET_SECTIONS),
        "config": config_sections(cfg, SUPERNET_SECTIONS),
        "data": asdict(cfg.data),
        "mean": list(splits.mean),
        "std": list(splits.std),
    }
    if choices is not None:
        meta["space_choices"] = [list(layer.choices) for layer in space.layers]
    if initial is not None:
        net.load_state_dict(initial)
    if dist is None:
        start_run(run_dir, cfg)
    else:
        dist.on_main(lambda: start_run(run_dir, cfg))
    hooks: list[Any] = []
    if options.interchoice == "split":
        hooks.append(SplitHook(net, options.split_epoch_for(train.epochs)))
    if train.health_models > 0:
        recal, val = recal_batches(cfg, splits), val_batches(cfg, splits)
        hooks.append(HealthProbe(net, train.health_models, recal, val, seed, recal_reset(cfg, net)))
    # batch_size is per rank: under torchrun each global batch is sharded over the ranks
    loader = require_batches(
        train_loader(cfg, splits, train.batch_size, seed, *((dist.rank, dist.world_size) if dist else ())),
        "train.batch_size",
    )
    if dist is not None:
        dist.broadcast_module(net)
    trainer = supernet_trainer(
        net, sampler, loader, train, run_dir, meta, runtime, hooks=hooks, dist=dist, tensorboard=cfg.log.tensorboard
    )
    resumed = trainer.resume(fallback) if resume else False
    logger.debug(
        f"train: {space.name} ({space.size:.3g} archs), sampler {train.sampler}, {trainer.total_steps} steps on "
        f"{runtime.device}" + (f", resumed at step {trainer.global_step}" if resumed else "") + f"; into {run_dir}"
    )
    start = time.time()
    epochs = trainer.fit()
    few_shot = None
    if train.few_shot_layers and choices is None:
        from supernet.jobs.few_shot import train_few_shot

        few_shot = train_few_shot(cfg, run_dir, net, train_supernet, splits)
    return {
        "few_shot": few_shot,
        "run_dir": str(run_dir),
        "resumed": resumed,
        "epochs": epochs,
        "global_step": trainer.global_step,
        "seconds": time.time() - start,
        "rank": 0 if dist is None else dist.rank,
    }
