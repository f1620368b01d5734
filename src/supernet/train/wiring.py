"""The one wiring of a supernet's training, shared by `supernet train` (`jobs.train`) and `api.fit`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from supernet.core.device import Runtime
from supernet.train.loop import OptimConfig, Trainer, TrainHook
from supernet.train.sampler import Sampler, step_rng


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
    step's first path teaches the others; `tensorboard`: events in `run_dir/tensorboard/` too."""
    return Trainer(
        net,
        lambda x, a: net(x, a),
        lambda e, s: sampler.paths(step_rng(cfg.seed, e, s)),
        loader,
        cfg,
        run_dir,
        meta,
        hooks=hooks,
        dist=dist,
        runtime=runtime,
        distill=getattr(cfg, "distill", False),
        tensorboard=tensorboard,
    )


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
