"""The toolkit's verbs as library functions: train a supernet, search it, export, retrain.

The CLI only parses arguments and calls these; a notebook can call them the same way.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

import torch

from supernet.config import Config, save_config
from supernet.data import (Augmentation, BatchLoader, DatasetSplits, SampleTransform, StreamingLoader, StreamPolicy,
                           default_augmentation, load_splits, subset)
from supernet.data.augment import augmentation_family
from supernet.device import Runtime, runtime_for
from supernet.errors import CheckpointError, ConfigError, SpaceError
from supernet.io import atomic_write_text
from supernet.model.export import export_model, standalone_config
from supernet.model.factory import build_supernet
from supernet.model.standalone import StandaloneNet
from supernet.model.supernet import Supernet, SupernetOptions
from supernet.plugins import describe as describe_imports
from supernet.space import Arch, SearchSpace, create_space
from supernet.train.checkpoint import (
    LAST,
    find_checkpoint,
    load_checkpoint,
    remove_stale_temporaries,
    require_previous,
)
from supernet.train.loop import OptimConfig, Trainer, accuracy
from supernet.train.sampler import create_sampler, step_rng

if TYPE_CHECKING:
    from supernet.analysis.benchmark import BenchmarkSpec
    from supernet.search import Problem
    from supernet.search.supernet_evaluator import SupernetEvaluator

# -- building blocks ----------------------------------------------------------------------------
def load_data(cfg: Config) -> DatasetSplits:
    d = cfg.data
    extra = {k: v for k, v in (("resolution", d.resolution), ("channels", d.channels),
                               ("max_per_class", d.max_per_class)) if d.name == "folder" and v is not None}
    val_size: int | float = int(d.val_size) if d.val_size >= 1 else d.val_size
    stats = _sample_transform(cfg, d.channels) if d.resolution is not None else None
    return load_splits(d.name, d.root, val_size=val_size, seed=d.split_seed, train_limit=d.train_limit,
                       val_per_class=d.val_per_class,
                       policy=StreamPolicy(d.stream, d.memory_limit_mb << 20), stats_transform=stats,
                       **extra, **d.options)


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
    d = cfg.data
    if d.resolution is None:
        raise ConfigError("streaming data needs data.resolution (the crop size, e.g. 224)")
    return SampleTransform(d.resolution, channels, scale=(d.crop_scale_min, 1.0), eval_crop=d.eval_crop)


def _workers(cfg: Config) -> int:
    import os

    return cfg.data.workers if cfg.data.workers is not None else min(8, os.cpu_count() or 1)


def train_loader(cfg: Config, splits: DatasetSplits, batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1) -> Loader:
    """Shuffled, augmented training batches, sharded over `world_size` ranks; the same order in memory or streamed."""
    if splits.streaming:
        return StreamingLoader(splits.train, batch_size, _sample_transform(cfg, splits.train.channels),
                               Augmentation(splits.mean, splits.std), shuffle=True, seed=seed, drop_last=True,
                               train=True, rank=rank, world_size=world_size, workers=_workers(cfg))
    aug = default_augmentation(augmentation_family(cfg.data.name), splits.mean, splits.std, train=True,
                               resolution=cfg.data.resolution)
    return BatchLoader(splits.train, batch_size, shuffle=True, seed=seed, drop_last=True, transform=aug, rank=rank,
                       world_size=world_size)


def require_batches(loader: BatchLoader, field: str) -> BatchLoader:
    """A training loader with at least one full batch (it drops the last, short one)."""
    if len(loader) == 0:
        ranks = f" x {loader.world_size} processes" if loader.world_size > 1 else ""
        raise ConfigError(f"{field}={loader.batch_size}{ranks} is larger than the training split "
                          f"({len(loader.dataset)} images): not one full batch; lower {field}")
    return loader


def recal_batches(cfg: Config, splits: DatasetSplits) -> list[torch.Tensor]:
    """The fixed, seeded training batches (train-time augmentation) used for BN recalibration."""
    e = cfg.eval
    loader = require_batches(train_loader(cfg, splits, e.recal_batch_size, e.seed), "eval.recal_batch_size")
    return [x for _, (x, _) in zip(range(min(e.recal_batches, len(loader))), loader.iter_epoch(0))]


def val_batches(cfg: Config, splits: DatasetSplits) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The validation batches candidates are scored on (the first `eval.val_limit` images)."""
    return list(eval_loader(cfg, splits, "val", cfg.eval.val_batch_size, cfg.eval.val_limit))


def eval_loader(cfg: Config, splits: DatasetSplits, which: str, batch_size: int, limit: int | None = None) -> Loader:
    dataset = getattr(splits, which)
    if limit is not None and limit < len(dataset):
        dataset = subset(dataset, torch.arange(limit))
    if splits.streaming:
        return StreamingLoader(dataset, batch_size, _sample_transform(cfg, dataset.channels),
                               Augmentation(splits.mean, splits.std), workers=_workers(cfg))
    aug = default_augmentation(augmentation_family(cfg.data.name), splits.mean, splits.std, train=False)
    return BatchLoader(dataset, batch_size, shuffle=False, transform=aug)


# How a run executes, not what it computes: a checkpoint resumes under other values of these
# (a GPU run in fp16 resumes on a CPU in bf16 or fp32).
# Decode processes (`data.workers`) change speed, never a batch.
EXECUTION_FIELDS = ("progress", "workers", "amp", "channels_last", "deterministic", "allreduce_bucket_mb")


def config_hash(cfg: Config, sections: tuple[str, ...]) -> str:
    """Hash of the config sections a checkpoint depends on (execution settings excluded)."""
    blob = {s: asdict(getattr(cfg, s)) for s in sections}
    for section in blob.values():
        for name in EXECUTION_FIELDS:
            section.pop(name, None)
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]


def runtime_of(cfg: Config, section: Any | None = None) -> Runtime:
    """The device (`cfg.device`), autocast and memory format a verb runs with; `section` is the
    training section whose `amp`/`channels_last`/`deterministic` apply (default `cfg.train`, which
    also governs supernet evaluation)."""
    s = section if section is not None else cfg.train
    name = "standalone" if s is cfg.standalone else "train"
    return runtime_for(cfg.device, s.amp, s.channels_last, s.deterministic, name)


def _optim(section: Any) -> OptimConfig:
    fields = OptimConfig.__dataclass_fields__
    return OptimConfig(**{k: v for k, v in asdict(section).items() if k in fields})


SUPERNET_SECTIONS = ("data", "space", "supernet", "train")
STANDALONE_SECTIONS = ("data", "standalone")


def config_sections(cfg: Config, sections: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The sections a checkpoint depends on, as plain JSON values (execution settings excluded)."""
    blob = {s: asdict(getattr(cfg, s)) for s in sections}
    for section in blob.values():
        for name in EXECUTION_FIELDS:
            section.pop(name, None)
    return json.loads(json.dumps(blob, default=str))


def check_run(run_dir: Path, cfg: Config, resume: bool, sections: tuple[str, ...], fallback: bool = False) -> None:
    """Refuse, before anything is written, a run directory that holds a training run we must not touch:
    without `resume` any checkpoint; with `resume` a checkpoint made with another config (the error
    names the fields that differ). An unreadable checkpoint is left to the resume that reports it."""
    ckpt_dir = run_dir / "checkpoints"
    if not resume and find_checkpoint(ckpt_dir) is not None:
        raise CheckpointError(f"{run_dir} already holds a training run; pass --resume to continue it "
                              f"or choose another --run-dir (nothing was overwritten)")
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
    before = meta.get("config") or _saved_config(run_dir / "config.yaml", sections)
    changed = _changed_fields(before, config_sections(cfg, sections)) if before else []
    what = ", ".join(changed) if changed else "the config differs from the one it was trained with"
    raise CheckpointError(f"cannot resume {run_dir} with another config ({what}); resume with the run's own "
                          f"config or choose another --run-dir (nothing was written)")


def _saved_config(path: Path, sections: tuple[str, ...]) -> dict[str, Any] | None:
    """The run's config.yaml (written when training started), or None if it is missing or unreadable."""
    from supernet.config import load_config

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
    ckpt_dir = run_dir / "checkpoints"
    if ckpt_dir.exists():
        remove_stale_temporaries(ckpt_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")


# -- supernet training ----------------------------------------------------------------------------
def train_supernet(cfg: Config, run_dir: Path, resume: bool = False, fallback: bool = False,
                   choices: list[list[str]] | None = None, initial: dict[str, Any] | None = None) -> dict[str, Any]:
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
    runtime = runtime_of(cfg)
    dist = init_distributed(runtime.device, cfg.train.allreduce_bucket_mb)
    check_run(run_dir, cfg, resume, SUPERNET_SECTIONS, fallback)
    torch.manual_seed(cfg.train.seed)
    splits = load_data(cfg)
    space = build_space(cfg, splits)
    if choices is not None:
        space = space.restrict(choices)
    options = SupernetOptions(**asdict(cfg.supernet))
    t = cfg.train
    if options.interchoice != "none" and t.sampler == "path-dropout":
        raise ConfigError("train.sampler=path-dropout runs several ops per layer; it needs supernet.interchoice=none")
    net = runtime.prepare(build_supernet(space, options))
    sampler = create_sampler(t.sampler, space, identity=options.identity, constrained_bins=t.constrained_bins,
                             drop_rate=t.drop_rate)
    seed = t.seed
    meta = {"kind": "supernet", "space": space.name, "space_options": dict(space.options),
            "space_fingerprint": space.fingerprint(), "space_description": space.to_dict(),
            "imports": describe_imports(cfg.imports), "supernet": options.to_dict(),
            "config_hash": config_hash(cfg, SUPERNET_SECTIONS), "config": config_sections(cfg, SUPERNET_SECTIONS),
            "data": asdict(cfg.data), "mean": list(splits.mean), "std": list(splits.std)}
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
        hooks.append(SplitHook(net, options.split_epoch))
    if t.health_models > 0:
        hooks.append(HealthProbe(net, t.health_models, recal_batches(cfg, splits), val_batches(cfg, splits), seed))
    # batch_size is per rank: under torchrun each global batch is sharded over the ranks
    loader = require_batches(train_loader(cfg, splits, t.batch_size, seed,
                                          *((dist.rank, dist.world_size) if dist else ())), "train.batch_size")
    if dist is not None:
        dist.broadcast_module(net)
    trainer = Trainer(net, lambda x, a: net(x, a), lambda e, s: sampler.paths(step_rng(seed, e, s)),
                      loader, _optim(t), run_dir, meta, hooks=hooks, dist=dist, runtime=runtime)
    resumed = trainer.resume(fallback) if resume else False
    start = time.time()
    epochs = trainer.fit()
    return {"run_dir": str(run_dir), "resumed": resumed, "epochs": epochs, "global_step": trainer.global_step,
            "seconds": time.time() - start, "rank": 0 if dist is None else dist.rank}


def load_supernet(checkpoint: Path) -> tuple[Supernet, dict[str, Any]]:
    """Rebuild a supernet from a checkpoint (file or run directory) and load its weights.

    A space, op or block the checkpoint needs but this process has not registered is a one-line error that
    names the checkpoint's recorded `--import`s; they are never imported from here.
    """
    from supernet.plugins import missing_import_hint
    from supernet.space import list_spaces

    path = _checkpoint_path(Path(checkpoint))
    ckpt = load_checkpoint(path, expect={"kind": "supernet"})
    meta = ckpt.meta
    hint = missing_import_hint(meta.get("imports"))
    if meta["space"] not in {entry.name for entry in list_spaces()}:
        raise CheckpointError(f"checkpoint {path} needs search space {str(meta['space'])[:80]!r}, which is not "
                              f"registered{hint or ' (check `supernet spaces`)'}")
    space = space_of(meta)
    if space.fingerprint() != meta["space_fingerprint"]:
        raise CheckpointError(f"checkpoint {path} was made for a different version of space "
                              f"'{meta['space']}' (fingerprint {meta['space_fingerprint']} vs {space.fingerprint()}"
                              f"{_first_difference(meta.get('space_description'), space.to_dict())}){hint}")
    try:
        net = build_supernet(space, SupernetOptions(**meta["supernet"]))
    except (ValueError, KeyError) as e:  # an op name or block type nobody registered
        raise CheckpointError(f"checkpoint {path}: cannot build its supernet ({str(e)[:200]}){hint}") from None
    net.load_state_dict(ckpt.state["model"])
    net.eval()
    return net, meta


def _first_difference(recorded: Any, current: dict[str, Any]) -> str:
    """Where a checkpoint's recorded space description and the registered space first differ."""
    if not isinstance(recorded, dict):
        return ""
    for key in sorted(set(recorded) | set(current)):
        if json.dumps(recorded.get(key), sort_keys=True) != json.dumps(current.get(key), sort_keys=True):
            return f"; first difference in {str(key)[:40]!r}"
    return ""


def space_of(meta: dict[str, Any]) -> SearchSpace:
    """The space a supernet checkpoint was trained on: the registered space, restricted to
    `space_choices` when the supernet was pruned (`supernet prune`)."""
    space = create_space(meta["space"], **meta["space_options"])
    choices = meta.get("space_choices")
    if choices is not None:
        if not isinstance(choices, list) or not all(isinstance(c, list) for c in choices):
            raise CheckpointError(f"checkpoint space_choices must be a list of op lists, got {type(choices).__name__}")
        if len(choices) != space.num_layers:
            raise CheckpointError(f"checkpoint space_choices has {len(choices)} layers, space '{space.name}' has "
                                  f"{space.num_layers}")
        space = space.restrict(choices)
    return space


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
    """An arch from a string, a named arch, or a JSON file written by search (`best`) or export (`arch`)."""
    if not text.endswith(".json"):
        return space.parse_arch(text)
    path = Path(text)
    if not path.is_file():
        raise SpaceError(f"arch file {path} not found (an arch is op names, indices, a named arch or a "
                         f"result.json/model.json)")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SpaceError(f"cannot read arch file {path}: {e}") from None
    found = _arch_in(data)
    if found is None:
        raise SpaceError(f"arch file {path} holds no architecture; expected a search result.json (\"best\"), "
                         f"an export model.json (\"arch\") or a JSON string")
    return space.parse_arch(found)


def _arch_in(data: Any) -> str | None:
    if isinstance(data, str):
        return data
    if not isinstance(data, dict):
        return None
    for key in ("arch", "best"):
        value = data.get(key)
        if isinstance(value, dict):
            value = value.get("arch")
        if isinstance(value, str):
            return value
    return None


# -- export ----------------------------------------------------------------------------------------
def export_arch(checkpoint: Path, arch_text: str, out_dir: Path, drop_els: bool = False,
                prepare: Callable[[Supernet, Arch], None] | None = None, onnx: bool = False) -> dict[str, Any]:
    """Write the stand-alone model of `arch`: config JSON, inherited weights, and a torch.export program;
    with `onnx`, also `model.onnx`, checked against PyTorch with onnxruntime (`supernet.model.onnx_export`).

    The model computes what the supernet path computes (trained ELS folded or kept); `drop_els` drops
    shape-keeping ELS layers instead (SCARLET's rule for retraining; the result says it differs).
    `prepare(net, arch)` runs before the export (the pipeline recalibrates the path's BatchNorms).
    """
    net, meta = load_supernet(checkpoint)
    arch = parse_arch(net.space, arch_text)
    if prepare is not None:
        prepare(net, arch)
    model = export_model(net, arch, drop_els=drop_els).eval()
    dropped = _dropped_els(net, arch) if drop_els else []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {**model.config, "normalisation": {"mean": meta.get("mean"), "std": meta.get("std")},
              "els_dropped": dropped, "same_function_as_supernet_path": not dropped}
    atomic_write_text(out_dir / "model.json", json.dumps(config, indent=1))
    from supernet.io import atomic_write

    atomic_write(out_dir / "weights.pt", lambda f: torch.save(model.state_dict(), f))
    program = _try_torch_export(model, out_dir / "model.pt2")
    out = {"arch": arch.to_string(), "dir": str(out_dir), "config": str(out_dir / "model.json"),
           "weights": str(out_dir / "weights.pt"), "program": program,
           "els_folded": len(model.config.get("els_folded", [])), "els_kept": len(model.config.get("els_kept", [])),
           "els_dropped": len(dropped), "same_function_as_supernet_path": not dropped}
    if onnx:
        from supernet.model.onnx_export import export_onnx

        out["onnx"] = export_onnx(model, out_dir / "model.onnx", meta.get("mean"), meta.get("std"))
    return out


def _dropped_els(net: Supernet, arch: Arch) -> list[int]:
    """Layers whose trained, shape-keeping ELS the paper's rule drops."""
    if net.options.identity != "els" or net.space.topology != "chain":
        return []
    return [i for i, (layer, op) in enumerate(zip(net.space.layers, arch.ops)) if op == "id" and layer.keeps_shape]


def _try_torch_export(model: StandaloneNet, path: Path) -> str | None:
    """A `torch.export` program that loads with plain torch (`torch.export.load`), no supernet code."""
    try:
        batch = torch.export.Dim("batch")
        program = torch.export.export(model, (model.example_input(2),), dynamic_shapes=({0: batch},))
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
    check_run(run_dir, cfg, resume, STANDALONE_SECTIONS)
    s = cfg.standalone
    runtime = runtime_of(cfg, s)
    torch.manual_seed(s.seed)
    splits = load_data(cfg)
    model = initial if initial is not None else StandaloneNet(standalone_config(space, arch, identity))
    meta = {"kind": "standalone", "arch": arch.to_string(), "space_fingerprint": space.fingerprint(),
            "config_hash": config_hash(cfg, STANDALONE_SECTIONS), "config": config_sections(cfg, STANDALONE_SECTIONS),
            "mean": list(splits.mean), "std": list(splits.std)}
    start_run(run_dir, cfg)
    trainer = Trainer(model, lambda x, _: model(x), lambda e, st: [None],
                      require_batches(train_loader(cfg, splits, s.batch_size, s.seed), "standalone.batch_size"),
                      _optim(s), run_dir, meta, runtime=runtime)
    if resume:
        trainer.resume()
    start = time.time()
    trainer.fit()
    model.eval()
    result = {"arch": arch.to_string(), "seconds": time.time() - start,
              "val_acc": accuracy(model, eval_loader(cfg, splits, "val", 500), runtime),
              "test_acc": accuracy(model, eval_loader(cfg, splits, "test", 500), runtime)}
    atomic_write_text(run_dir / "result.json", json.dumps(result, indent=1))
    return result


# -- search ----------------------------------------------------------------------------------------
def search_problem(cfg: Config) -> "Problem":
    """The strategy's objectives (from its registered spec: SPOS accuracy; SCARLET NSGA-II accuracy, -MACs,
    params weighted 0.4/0.4/0.2; CES accuracy and MACs) and the hard constraints of the search section.
    MACs/params constraints are checked before evaluation."""
    from supernet.cost import parse_quantity
    from supernet.search import STRATEGIES, Problem, constraint_from_cli

    s = cfg.search
    spec = STRATEGIES.get(s.strategy)
    q = lambda v: None if v is None else parse_quantity(v)  # noqa: E731
    constraints = [constraint_from_cli(m, q(lo), q(hi)) for m, lo, hi in
                   (("macs", s.min_macs, s.max_macs), ("params", s.min_params, s.max_params),
                    ("bitops", s.min_bitops, s.max_bitops)) if lo or hi]
    window = latency_window(cfg)
    if window != (None, None):
        constraints.append(constraint_from_cli("latency_ms", *window))
    if s.min_acc is not None and not spec.applies_min_acc:  # nsga2 applies acc_min itself (SCARLET Alg. 1)
        constraints.append(constraint_from_cli("accuracy", s.min_acc, None))
    # search.cost_metric: the cost objective of multi-objective strategies (e.g. bitops instead of MACs);
    # with a latency table and the default (macs), latency (PAD-NAS CES: max accuracy, min latency)
    metric = "latency_ms" if s.latency_table and s.cost_metric == "macs" else s.cost_metric
    return Problem(objectives=_with_cost_metric(tuple(spec.objectives), metric), constraints=tuple(constraints))


def _with_cost_metric(objectives: tuple, metric: str) -> tuple:
    """The objectives with their MACs term on `metric` (e.g. bitops for a quantized space)."""
    from dataclasses import replace

    return tuple(replace(o, metric=metric) if o.metric == "macs" else o for o in objectives)


def latency_window(cfg: Config) -> tuple[float | None, float | None]:
    """(min, max) of `search.min_latency/max_latency` in milliseconds; they need `search.latency_table`."""
    from supernet.cost import parse_duration_ms

    s = cfg.search
    window = tuple(None if v is None else parse_duration_ms(v) for v in (s.min_latency, s.max_latency))
    if window != (None, None) and not s.latency_table:
        raise ConfigError("--min-latency/--max-latency need --latency-table FILE (from `supernet latency-table`)")
    return window  # type: ignore[return-value]


def search_cost_table(cfg: Config, space: SearchSpace, identity: str) -> Any:
    """The space's MACs/params table, plus `latency_ms` from `search.latency_table` when given.

    A latency window that no arch can meet fails here, with the achievable range (a dynamic
    program over the per-layer latencies, `supernet.cost.latency.check_window`)."""
    from supernet.cost import CostTable
    from supernet.cost.latency import METRIC, check_window, with_latency

    table = CostTable.build(space, identity)
    if not cfg.search.latency_table:
        return table
    table = with_latency(table, cfg.search.latency_table, space, identity)
    low, high = latency_window(cfg)
    if (low, high) != (None, None):
        check_window(table.fixed(METRIC), table.layer_values(METRIC), low, high)
    return table


def strategy_options(cfg: Config) -> dict[str, Any]:
    """The search section mapped onto the strategy's options by its registered spec."""
    from supernet.search import STRATEGIES

    return STRATEGIES.get(cfg.search.strategy).options(cfg.search)


def build_evaluator(cfg: Config, net: Supernet, splits: DatasetSplits) -> "SupernetEvaluator":
    """Fixed recalibration batches (train data, train-time augmentation, seeded) and validation batches,
    evaluated on the configured device under `train.amp`."""
    from supernet.search.supernet_evaluator import SupernetEvaluator

    return SupernetEvaluator(net, recal_batches(cfg, splits), val_batches(cfg, splits), cfg.eval.recal_reset,
                             runtime_of(cfg))


def search_supernet(cfg: Config, checkpoint: Path, run_dir: Path, resume: bool = False) -> dict[str, Any]:
    """Search a trained supernet under the configured constraints.

    Every evaluation goes to `run_dir/journal.sqlite` as it happens and to the supernet run's
    shared `eval-cache.sqlite` (keyed by checkpoint hash + evaluation settings), so a killed search
    resumes without re-evaluating and later searches reuse earlier evaluations.
    """
    net, meta = load_supernet(checkpoint)
    cfg = searched_config(cfg, meta)  # evaluate on the supernet's data; config.yaml records its settings
    evaluator = build_evaluator(cfg, net, load_data(cfg))
    table = search_cost_table(cfg, net.space, net.options.identity)
    key = _evaluation_key(cfg, checkpoint)
    shared = _evaluation_cache(_checkpoint_path(Path(checkpoint)).parent, Path(run_dir))
    return _run_search(cfg, net.space, table, lambda a: {"accuracy": evaluator.evaluate(a)}, key, Path(run_dir),
                       resume, shared, {"checkpoint": str(checkpoint)}, evaluator.runtime.device)


def searched_config(cfg: Config, meta: dict[str, Any]) -> Config:
    """`cfg` with the searched supernet's own data, space, supernet and train sections (from its
    checkpoint), so that a search's config.yaml records what was searched, not defaults."""
    from supernet.config import SpaceConfig, SupernetConfig, config_from_dict

    trained = meta.get("config") or {}
    execution = {k: v for k, v in asdict(cfg.train).items() if k in EXECUTION_FIELDS}  # this run's, not the training's
    train = config_from_dict({"train": {**trained["train"], **execution}}).train if "train" in trained else cfg.train
    return replace(cfg, data=type(cfg.data)(**meta["data"]), train=train,
                   space=SpaceConfig(name=meta["space"], preset=None, options=dict(meta["space_options"])),
                   supernet=SupernetConfig(**meta["supernet"]))


def _evaluation_cache(supernet_dir: Path, run_dir: Path) -> Path:
    """The shared evaluation cache beside the checkpoint, or, when that folder is read-only, one in the
    search's own run directory (said on stderr)."""
    if writable_dir(supernet_dir):
        return supernet_dir / "eval-cache.sqlite"
    print(f"search: {supernet_dir} is read-only; the evaluation cache is kept in {run_dir / 'eval-cache.sqlite'}",
          file=sys.stderr, flush=True)
    return run_dir / "eval-cache.sqlite"


def writable_dir(folder: Path) -> bool:
    """Whether a file can be created in `folder` (tried, since permissions are not the only reason)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def search_table(cfg: Config, table_csv: Path, space: SearchSpace, run_dir: Path, identity: str = "skip",
                 resume: bool = False) -> dict[str, Any]:
    """Search a table of known accuracies (`arch,accuracy[,macs,params,...]`) instead of a supernet."""
    from supernet.search import TableEvaluator

    evaluator = TableEvaluator(table_csv, space)
    table = search_cost_table(cfg, space, identity)
    digest = hashlib.sha256(Path(table_csv).read_bytes()).hexdigest()[:16]
    return _run_search(cfg, space, table, lambda a: {"accuracy": evaluator.evaluate(a)}, f"table:{digest}",
                       Path(run_dir), resume, None, {"table": str(table_csv)})


def search_benchmark(cfg: Config, spec: BenchmarkSpec, space: SearchSpace, run_dir: Path, identity: str = "skip",
                     resume: bool = False) -> dict[str, Any]:
    """Search a published benchmark's mean accuracies (e.g. NAS-Bench-Macro) instead of a supernet."""
    from supernet.analysis.benchmark import BenchmarkEvaluator, load_benchmark

    evaluator = BenchmarkEvaluator(load_benchmark(spec.name, spec.path, space), space)
    table = search_cost_table(cfg, space, identity)
    digest = hashlib.sha256(Path(spec.path).read_bytes()).hexdigest()[:16]
    return _run_search(cfg, space, table, lambda a: {"accuracy": evaluator.evaluate(a)}, f"benchmark:{digest}",
                       Path(run_dir), resume, None, {"benchmark": spec.name, "benchmark_file": str(spec.path)})


def _evaluation_key(cfg: Config, checkpoint: Path) -> str:
    from supernet.search import evaluation_key

    return evaluation_key(checkpoint_digest(checkpoint), {"eval": asdict(cfg.eval), "data": asdict(cfg.data)})


class SearchProgress:
    """A tqdm bar of evaluated archs and the best accuracy (as training has); without it, a plain
    stderr line every 10 evaluations, which reads well in log files."""

    def __init__(self, bar: bool) -> None:
        self.evaluated, self.best = 0, float("-inf")
        self.bar = None
        if bar:
            from tqdm import tqdm

            self.bar = tqdm(desc="search", unit="arch", leave=False, dynamic_ncols=True)

    def update(self, metrics: dict[str, float], step: Any) -> None:
        self.evaluated += 1
        self.best = max(self.best, metrics.get("accuracy", float("-inf")))
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(best=f"{self.best:.4f}", generation=step)
        elif self.evaluated % 10 == 0:
            print(f"search: {self.evaluated} archs evaluated (generation {step}), best accuracy {self.best:.4f}",
                  file=sys.stderr, flush=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_search(cfg: Config, space: SearchSpace, table: Any, evaluate: Any, key: str, run_dir: Path, resume: bool,
                shared_cache: Path | None, source: dict[str, str],
                device: torch.device | None = None) -> dict[str, Any]:
    import random
    from contextlib import ExitStack

    from supernet.search import Journal, create_strategy, run_search
    from supernet.search.distributed import init_from_env, is_main_rank, split_evaluate
    from supernet.search.plots import plot_pareto, plot_progress

    distributed = init_from_env(device or "cpu")
    journal_path = run_dir / "journal.sqlite"
    if journal_path.exists() and not resume:
        raise ConfigError(f"{run_dir} already holds a search journal; pass --resume to continue it "
                          f"or choose another --run-dir (nothing was overwritten)")
    if distributed:
        import torch.distributed as dist

        dist.barrier()  # every rank has checked before rank 0 creates the journal
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    problem = search_problem(cfg)
    costs = lambda arch: table.query(arch).to_dict()  # noqa: E731
    ranges = {m: table.range(m) for m in table.metrics}
    strategy = create_strategy(cfg.search.strategy, space, problem, costs, random.Random(cfg.search.seed),
                               ranges=ranges, **strategy_options(cfg))
    start, spent = time.time(), {"evaluate": 0.0}
    with ExitStack() as stack:
        writers = (journal_path, shared_cache) if is_main_rank() else ()  # rank 0 writes, all ranks read
        journals = [stack.enter_context(Journal(p)) for p in writers if p is not None]
        if not is_main_rank() and journal_path.exists():
            journals = [stack.enter_context(Journal(journal_path))]
        cache = {}
        for journal in reversed(journals):  # the run's own journal wins
            cache.update(journal.lookup(key, space))

        def timed(arch: Arch) -> dict[str, float]:
            t = time.time()
            metrics = evaluate(arch)
            spent["evaluate"] += time.time() - t
            return metrics

        progress = stack.enter_context(SearchProgress(cfg.search.progress and is_main_rank()))

        def record(arch: Arch, metrics: dict[str, float]) -> None:
            step = getattr(strategy, "generation", None)
            for journal in journals:
                journal.record(key, arch, metrics, step if isinstance(step, int) else None)
            progress.update(metrics, step)

        result = run_search(strategy, timed, record if is_main_rank() else None, cache,
                            split_evaluate(timed) if distributed else None)
    applied = getattr(strategy, "problem", problem)  # nsga2 adds its acc_min constraint
    require_feasible(applied, result.best_metrics, len(result.history), journal_path)
    out = {**result.to_dict(), "strategy": cfg.search.strategy, "problem": applied.describe(), **source,
           "seconds": time.time() - start, "eval_seconds": spent["evaluate"],
           "evaluations": len({row["arch"] for row in result.history})}
    if cfg.search.strategy == "nsga2":
        out["acc_min"] = strategy.config.acc_min  # type: ignore[attr-defined]
    if is_main_rank():
        atomic_write_text(run_dir / "result.json", json.dumps(out, indent=1))
        plot_pareto(result, run_dir / "pareto.png")
        plot_progress({cfg.search.strategy: result}, run_dir / "progress.png")
    return out


def require_feasible(problem: Problem, best_metrics: dict[str, float], evaluated: int, journal: Path) -> None:
    """A search whose best arch breaks a constraint (e.g. `--min-acc`) found nothing: SearchError."""
    from supernet.errors import SearchError

    if problem.check_all(best_metrics):
        return
    wanted = " and ".join(c.describe() for c in problem.constraints)
    best = best_metrics.get("accuracy", float("nan"))
    raise SearchError(f"none of the {evaluated} evaluated architectures satisfied {wanted}; the best accuracy "
                      f"found was {best:.4f} (evaluations kept in {journal})")
