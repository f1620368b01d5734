"""The toolkit's verbs as library functions: train a supernet, search it, export, retrain.

The CLI only parses arguments and calls these; a notebook can call them the same way.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from supernet.config import Config, save_config
from supernet.data import BatchLoader, DatasetSplits, default_augmentation, load_splits
from supernet.errors import CheckpointError, ConfigError, SpaceError
from supernet.io import atomic_write_text
from supernet.model.export import export_model, standalone_config
from supernet.model.standalone import StandaloneNet
from supernet.model.supernet import Supernet, SupernetOptions
from supernet.space import Arch, SearchSpace, create_space
from supernet.train.checkpoint import LAST, find_checkpoint, load_checkpoint, remove_stale_temporaries
from supernet.train.loop import OptimConfig, Trainer, accuracy
from supernet.train.sampler import create_sampler, step_rng

if TYPE_CHECKING:
    from supernet.search import Problem
    from supernet.search.supernet_evaluator import SupernetEvaluator

DATA_SHAPE_OPTIONS = ("input_channels", "num_classes", "resolution")


# -- building blocks ----------------------------------------------------------------------------
def load_data(cfg: Config) -> DatasetSplits:
    d = cfg.data
    extra = {k: v for k, v in (("resolution", d.resolution), ("channels", d.channels),
                               ("max_per_class", d.max_per_class)) if d.name == "folder" and v is not None}
    val_size: int | float = int(d.val_size) if d.val_size >= 1 else d.val_size
    return load_splits(d.name, d.root, val_size=val_size, seed=d.split_seed, train_limit=d.train_limit, **extra)


def build_space(cfg: Config, splits: DatasetSplits | None = None) -> SearchSpace:
    """The configured space, with input channels, classes and resolution taken from the data."""
    options = dict(cfg.space.options)
    if splits is not None:
        images = splits.train.images
        found = {"input_channels": images.shape[1], "num_classes": len(splits.train.classes),
                 "resolution": images.shape[2]}
        for key, value in found.items():
            if key in options and options[key] != value:
                raise ConfigError(f"space.options.{key}={options[key]} does not match the data ({value})")
            options[key] = value
    return create_space(cfg.space.name, preset=cfg.space.preset, **options)


def train_loader(cfg: Config, splits: DatasetSplits, batch_size: int, seed: int) -> BatchLoader:
    aug = default_augmentation(cfg.data.name, splits.mean, splits.std, train=True, resolution=cfg.data.resolution)
    return BatchLoader(splits.train, batch_size, shuffle=True, seed=seed, drop_last=True, transform=aug)


def eval_loader(cfg: Config, splits: DatasetSplits, which: str, batch_size: int, limit: int | None = None) -> BatchLoader:
    from supernet.data import subset

    dataset = getattr(splits, which)
    if limit is not None and limit < len(dataset):
        dataset = subset(dataset, torch.arange(limit))
    aug = default_augmentation(cfg.data.name, splits.mean, splits.std, train=False)
    return BatchLoader(dataset, batch_size, shuffle=False, transform=aug)


def config_hash(cfg: Config, sections: tuple[str, ...]) -> str:
    """Hash of the config sections a checkpoint depends on (progress bars excluded)."""
    blob = {s: asdict(getattr(cfg, s)) for s in sections}
    for section in blob.values():
        section.pop("progress", None)
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _optim(section: Any) -> OptimConfig:
    fields = OptimConfig.__dataclass_fields__
    return OptimConfig(**{k: v for k, v in asdict(section).items() if k in fields})


def _prepare_run(run_dir: Path, cfg: Config, resume: bool) -> None:
    ckpt_dir = run_dir / "checkpoints"
    if ckpt_dir.exists():
        remove_stale_temporaries(ckpt_dir)
    if not resume and find_checkpoint(ckpt_dir) is not None:
        raise CheckpointError(f"{run_dir} already holds a training run; pass --resume to continue it "
                              f"or choose another --run-dir (nothing was overwritten)")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")


# -- supernet training ----------------------------------------------------------------------------
def train_supernet(cfg: Config, run_dir: Path, resume: bool = False, fallback: bool = False) -> dict[str, Any]:
    """Train a supernet with the configured sampler; checkpoints every epoch into `run_dir`."""
    run_dir = Path(run_dir)
    _prepare_run(run_dir, cfg, resume)
    torch.manual_seed(cfg.train.seed)
    splits = load_data(cfg)
    space = build_space(cfg, splits)
    options = SupernetOptions(**asdict(cfg.supernet))
    net = Supernet(space, options)
    sampler = create_sampler(cfg.train.sampler, space)
    seed = cfg.train.seed
    meta = {"kind": "supernet", "space": space.name, "space_options": dict(space.options),
            "space_fingerprint": space.fingerprint(), "supernet": options.to_dict(),
            "config_hash": config_hash(cfg, ("data", "space", "supernet", "train")),
            "data": asdict(cfg.data), "mean": list(splits.mean), "std": list(splits.std)}
    trainer = Trainer(net, lambda x, a: net(x, a), lambda e, s: sampler.paths(step_rng(seed, e, s)),
                      train_loader(cfg, splits, cfg.train.batch_size, seed), _optim(cfg.train), run_dir, meta)
    resumed = trainer.resume(fallback) if resume else False
    start = time.time()
    epochs = trainer.fit()
    return {"run_dir": str(run_dir), "resumed": resumed, "epochs": epochs, "global_step": trainer.global_step,
            "seconds": time.time() - start}


def load_supernet(checkpoint: Path) -> tuple[Supernet, dict[str, Any]]:
    """Rebuild a supernet from a checkpoint (file or run directory) and load its weights."""
    path = _checkpoint_path(Path(checkpoint))
    ckpt = load_checkpoint(path, expect={"kind": "supernet"})
    meta = ckpt.meta
    space = create_space(meta["space"], **meta["space_options"])
    if space.fingerprint() != meta["space_fingerprint"]:
        raise CheckpointError(f"checkpoint {path} was made for a different version of space "
                              f"'{meta['space']}' (fingerprint {meta['space_fingerprint']} vs {space.fingerprint()})")
    net = Supernet(space, SupernetOptions(**meta["supernet"]))
    net.load_state_dict(ckpt.state["model"])
    net.eval()
    return net, meta


def _checkpoint_path(path: Path) -> Path:
    if path.is_dir():
        found = find_checkpoint(path / "checkpoints") or find_checkpoint(path)
        if found is None:
            raise CheckpointError(f"no checkpoint in {path} (looked for checkpoints/{LAST}); train a supernet first")
        return found
    return path


def checkpoint_digest(path: Path) -> str:
    """Content hash of a checkpoint file (the evaluation cache key's first part)."""
    h = hashlib.sha256()
    with _checkpoint_path(Path(path)).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def parse_arch(space: SearchSpace, text: str) -> Arch:
    """An arch from a string, a named arch, or a JSON file written by search/export."""
    path = Path(text)
    if text.endswith(".json") and path.is_file():
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise SpaceError(f"cannot read arch file {path}: {e}") from None
        text = data.get("arch") or data.get("best", {}).get("arch") or ""
    return space.parse_arch(text)


# -- export ----------------------------------------------------------------------------------------
def export_arch(checkpoint: Path, arch_text: str, out_dir: Path) -> dict[str, Any]:
    """Write the stand-alone model of `arch`: config JSON, inherited weights, and a torch.export program."""
    net, meta = load_supernet(checkpoint)
    arch = parse_arch(net.space, arch_text)
    model = export_model(net, arch).eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {**standalone_config(net.space, arch, net.options.identity),
              "normalisation": {"mean": meta.get("mean"), "std": meta.get("std")}}
    atomic_write_text(out_dir / "model.json", json.dumps(config, indent=1))
    from supernet.io import atomic_write

    atomic_write(out_dir / "weights.pt", lambda f: torch.save(model.state_dict(), f))
    program = _try_torch_export(model, out_dir / "model.pt2")
    return {"arch": arch.to_string(), "dir": str(out_dir), "config": str(out_dir / "model.json"),
            "weights": str(out_dir / "weights.pt"), "program": program}


def _try_torch_export(model: StandaloneNet, path: Path) -> str | None:
    """A `torch.export` program that loads with plain torch (`torch.export.load`), no supernet code."""
    try:
        program = torch.export.export(model, (model.example_input(1),))
        from supernet.io import atomic_write

        atomic_write(path, lambda f: torch.export.save(program, f))
        return str(path)
    except Exception:  # noqa: BLE001 - optional artefact; the config + weights are the contract
        return None


def load_exported(out_dir: Path) -> StandaloneNet:
    """Rebuild an exported model from its config and weights (no supernet checkpoint needed)."""
    config = json.loads((Path(out_dir) / "model.json").read_text())
    model = StandaloneNet(config)
    model.load_state_dict(torch.load(Path(out_dir) / "weights.pt", map_location="cpu", weights_only=True))
    return model


# -- stand-alone training --------------------------------------------------------------------------
def train_standalone(cfg: Config, run_dir: Path, space: SearchSpace, arch: Arch, identity: str = "skip",
                     resume: bool = False, initial: StandaloneNet | None = None) -> dict[str, Any]:
    """Train the stand-alone model of `arch` (from scratch unless `initial` is given); report accuracies."""
    run_dir = Path(run_dir)
    _prepare_run(run_dir, cfg, resume)
    s = cfg.standalone
    torch.manual_seed(s.seed)
    splits = load_data(cfg)
    model = initial if initial is not None else StandaloneNet(standalone_config(space, arch, identity))
    meta = {"kind": "standalone", "arch": arch.to_string(), "space_fingerprint": space.fingerprint(),
            "config_hash": config_hash(cfg, ("data", "standalone")), "mean": list(splits.mean),
            "std": list(splits.std)}
    trainer = Trainer(model, lambda x, _: model(x), lambda e, st: [None],
                      train_loader(cfg, splits, s.batch_size, s.seed), _optim(s), run_dir, meta)
    if resume:
        trainer.resume()
    start = time.time()
    trainer.fit()
    model.eval()
    result = {"arch": arch.to_string(), "seconds": time.time() - start,
              "val_acc": accuracy(model, eval_loader(cfg, splits, "val", 500)),
              "test_acc": accuracy(model, eval_loader(cfg, splits, "test", 500))}
    atomic_write_text(run_dir / "result.json", json.dumps(result, indent=1))
    return result


# -- search ----------------------------------------------------------------------------------------
def search_problem(cfg: Config) -> "Problem":
    """Objective: maximise accuracy; hard constraints from the search section (MACs/params first)."""
    from supernet.cost import parse_quantity
    from supernet.search import Objective, Problem, constraint_from_cli

    s = cfg.search
    q = lambda v: None if v is None else parse_quantity(v)  # noqa: E731
    constraints = [constraint_from_cli(m, q(lo), q(hi)) for m, lo, hi in
                   (("macs", s.min_macs, s.max_macs), ("params", s.min_params, s.max_params)) if lo or hi]
    if s.min_acc is not None:
        constraints.append(constraint_from_cli("accuracy", s.min_acc, None))
    return Problem(objectives=(Objective("accuracy", True),), constraints=tuple(constraints))


def strategy_options(cfg: Config) -> dict[str, Any]:
    s = cfg.search
    if s.strategy == "evolution":
        return {"population": s.population, "iterations": s.iterations, "topk": s.topk,
                "mutation_prob": s.mutation_prob}
    if s.strategy == "random":
        return {"num_samples": s.num_samples, "topk": s.topk}
    return {}


def build_evaluator(cfg: Config, net: Supernet, splits: DatasetSplits) -> "SupernetEvaluator":
    """Fixed recalibration batches (train data, train-time augmentation, seeded) and validation batches."""
    from supernet.search.supernet_evaluator import SupernetEvaluator

    e = cfg.eval
    recal_loader = train_loader(cfg, splits, e.recal_batch_size, e.seed)
    batches = recal_loader.iter_epoch(0)
    recal = [x for _, (x, _) in zip(range(min(e.recal_batches, len(recal_loader))), batches)]
    val = list(eval_loader(cfg, splits, "val", e.val_batch_size, e.val_limit))
    return SupernetEvaluator(net, recal, val, e.recal_reset)


def search_supernet(cfg: Config, checkpoint: Path, run_dir: Path) -> dict[str, Any]:
    """Search a trained supernet under the configured constraints; writes result.json and history."""
    import random

    from supernet.cost import CostTable
    from supernet.search import create_strategy, run_search

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    net, meta = load_supernet(checkpoint)
    cfg.data = type(cfg.data)(**meta["data"])  # evaluate on the data the supernet was trained on
    table = CostTable.build(net.space, net.options.identity)
    costs = lambda arch: table.query(arch).to_dict()  # noqa: E731
    evaluator = build_evaluator(cfg, net, load_data(cfg))
    problem = search_problem(cfg)
    ranges = {"macs": table.macs_range(), "params": table.range("params")}
    strategy = create_strategy(cfg.search.strategy, net.space, problem, costs, random.Random(cfg.search.seed),
                               ranges=ranges, **strategy_options(cfg))
    start = time.time()
    timings = {"evaluate": 0.0}

    def evaluate(arch: Arch) -> dict[str, float]:
        t = time.time()
        acc = evaluator.evaluate(arch)
        timings["evaluate"] += time.time() - t
        return {"accuracy": acc}

    result = run_search(strategy, evaluate)
    out = {**result.to_dict(), "strategy": cfg.search.strategy, "problem": problem.describe(),
           "checkpoint": str(checkpoint), "seconds": time.time() - start, "eval_seconds": timings["evaluate"],
           "evaluations": len({row["arch"] for row in result.history})}
    atomic_write_text(run_dir / "result.json", json.dumps(out, indent=1))
    return out
