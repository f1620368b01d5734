"""The one wiring of a supernet's training, shared by `supernet train` (`jobs.train`) and `api.fit`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from supernet.core.device import Runtime
from supernet.train.loop import OptimConfig, Trainer, TrainHook, steps_per_epoch
from supernet.train.sampler import Sampler, draw_paths, step_rng


def supernet_trainer(
    net: nn.Module,
    sampler: Sampler,
    loader: Any,
    cfg: OptimConfig,
    run_dir: Path,
    meta: dict[str, Any],
    runtime: Runtime,
    hooks: Sequence[TrainHook] = (),
    dist: Any = None,
    tensorboard: bool = False,
) -> Trainer:
    """A `Trainer` whose every step trains the paths `sampler` draws from (cfg.seed, epoch, step), the same
    on every rank and after a resume, through `net(x, arch)`; with `cfg.distill` (the `train` section) the
    step's first path teaches the others; with `cfg.pairwise_rank_weight` the step's paths are also ranked by
    their cost (`cost_prior`); `tensorboard`: events in `run_dir/tensorboard/` too."""
    per_epoch = steps_per_epoch(loader, cfg)
    total = max(1, cfg.epochs * per_epoch)
    rank_weight = getattr(cfg, "pairwise_rank_weight", 0.0)
    return Trainer(
        net,
        lambda x, a: net(x, a),
        lambda e, s: draw_paths(sampler, step_rng(cfg.seed, e, s), (e * per_epoch + s) / total),
        loader,
        cfg,
        run_dir,
        meta,
        hooks=hooks,
        dist=dist,
        runtime=runtime,
        distill=getattr(cfg, "distill", False),
        tensorboard=tensorboard,
        path_cost=cost_prior(net) if rank_weight else None,
        rank_weight=rank_weight,
    )


def cost_prior(net: Any) -> Callable[[Any], float]:
    """The pairwise ranking loss's prior: a path's cost in the space's own metric (BitOps in quantized spaces,
    MACs otherwise), from the supernet's cost table; never a benchmark's feature."""
    from supernet.cost import CostTable
    from supernet.train.sampler import cost_metric_of

    table = CostTable.build(net.space, net.options.identity)
    metric = cost_metric_of(table)
    return lambda arch: float(table.value(arch, metric))


def supernet_meta(space: Any, options: Any, imports: list[str]) -> dict[str, Any]:
    """What every supernet checkpoint records of its space and build (`supernet.runs.load` rebuilds from it):
    shared by `supernet train` and `api.fit`, which add their config sections."""
    return {
        "kind": "supernet",
        "space": space.name,
        "space_options": dict(space.options),
        "space_fingerprint": space.fingerprint(),
        "space_description": space.to_dict(),
        "imports": imports,
        "supernet": options.to_dict(),
    }
