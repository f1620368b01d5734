"""Train an arch's stand-alone model from scratch (or from inherited weights) and report its accuracy."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from supernet.config.schema import Config
from supernet.core.events import open_events, require_tensorboard
from supernet.core.io import atomic_write_text
from supernet.core.rundir import RESULT
from supernet.data import DatasetSplits
from supernet.model.standalone import StandaloneNet
from supernet.ops.standalone import retrain_config, retrain_mode
from supernet.runs.build import (
    EVAL_BATCH_SIZE,
    STANDALONE_SECTIONS,
    check_run,
    config_hash,
    config_sections,
    eval_loader,
    load_data,
    require_batches,
    runtime_of,
    start_run,
    train_loader,
)
from supernet.space import Arch, SearchSpace
from supernet.train.loop import Trainer, accuracy


def train_standalone(
    cfg: Config,
    run_dir: Path,
    space: SearchSpace,
    arch: Arch,
    identity: str = "skip",
    resume: bool = False,
    initial: StandaloneNet | None = None,
    splits: DatasetSplits | None = None,
    let: bool | None = None,
) -> dict[str, Any]:
    """Train the stand-alone model of `arch` (from scratch unless `initial` is given); report accuracies.
    `splits`: the configured data, when the caller has it loaded already. With ELS identities the model
    is the LET paper's (identities dropped, `supernet.ops.standalone.let_standalone_config`) unless `let`
    is False."""
    run_dir = Path(run_dir)
    require_tensorboard(cfg.log.tensorboard)
    check_run(run_dir, cfg, resume, STANDALONE_SECTIONS)
    standalone = cfg.standalone
    runtime = runtime_of(cfg, standalone)
    torch.manual_seed(standalone.seed)
    splits = splits if splits is not None else load_data(cfg)
    model = initial if initial is not None else StandaloneNet(retrain_config(space, arch, identity, let))
    meta = {
        "kind": "standalone",
        "arch": arch.to_string(),
        "model": "given" if initial is not None else retrain_mode(space, identity, let),
        "space_fingerprint": space.fingerprint(),
        "config_hash": config_hash(cfg, STANDALONE_SECTIONS),
        "config": config_sections(cfg, STANDALONE_SECTIONS),
        "mean": list(splits.mean),
        "std": list(splits.std),
    }
    start_run(run_dir, cfg)
    trainer = Trainer(
        model,
        lambda x, _: model(x),
        lambda e, st: [None],
        require_batches(train_loader(cfg, splits, standalone.batch_size, standalone.seed), "standalone.batch_size"),
        standalone,
        run_dir,
        meta,
        runtime=runtime,
        tensorboard=cfg.log.tensorboard,
    )
    if resume:
        trainer.resume()
    start = time.time()
    trainer.fit()
    model.eval()
    result = {
        "arch": arch.to_string(),
        "seconds": time.time() - start,
        "val_acc": accuracy(model, eval_loader(cfg, splits, "val", EVAL_BATCH_SIZE), runtime),
        "test_acc": accuracy(model, eval_loader(cfg, splits, "test", EVAL_BATCH_SIZE), runtime),
    }
    atomic_write_text(run_dir / RESULT, json.dumps(result, indent=1))
    with open_events(run_dir, cfg.log.tensorboard) as events:
        events.scalars(trainer.global_step, {"eval/val_acc": result["val_acc"], "eval/test_acc": result["test_acc"]})
    return result
