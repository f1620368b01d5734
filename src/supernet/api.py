"""The toolkit from Python: build a supernet, train it on any torch data, search it, export the winner.

The functions here take objects (a space, a supernet, a `torch.utils.data.Dataset` or `DataLoader`) where
the verbs of `supernet.jobs` take a run config; both use the same supernet, sampler, training loop,
evaluator, cost table and strategies. The architecture is always a value passed in (`net(x, arch)`).

    space = supernet.module_space([supernet.LayerChoice([Conv3, Conv5, "id"])] * 4, (1, 28, 28), 10)
    net = supernet.build_supernet(space)
    supernet.fit(net, train_set, epochs=5)
    result = supernet.search_arch(net, val_set, train_data=train_set, max_macs="2M")
    model = supernet.export(net, result.best, "export/")      # model.json + weights.pt
    model = supernet.load_exported("export/")                   # in another process too
"""

from __future__ import annotations

import itertools
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from supernet.config.schema import Config, TrainConfig, options_of
from supernet.core.device import runtime_for
from supernet.core.errors import ConfigError, SearchError
from supernet.cost import CostTable, parse_quantity
from supernet.data import derive_seed
from supernet.jobs.export import export_path
from supernet.jobs.export import load_exported as _load_exported
from supernet.model.factory import build_supernet as _build_supernet
from supernet.model.protocol import SupernetModel
from supernet.model.standalone import StandaloneNet
from supernet.model.supernet import SupernetOptions
from supernet.runs.build import check_run, config_hash, config_sections
from supernet.search import STRATEGIES, Constraint, Problem, SearchResult, Strategy, create_strategy, run_search
from supernet.search.supernet_evaluator import SupernetEvaluator
from supernet.space import Arch, SearchSpace
from supernet.train.checkpoint import find_checkpoint, load_checkpoint
from supernet.train.loop import OptimConfig, Trainer, TrainingDiverged
from supernet.train.sampler import SAMPLERS, create_sampler
from supernet.train.wiring import supernet_trainer

Data = Dataset | DataLoader
"""What training and search read: a map-style `Dataset` of (image, label) pairs, or a `DataLoader` of batches."""
Callback = Callable[[Arch, dict[str, float]], None]
"""`callback(arch, metrics)`, called after each architecture a search evaluates (its costs and accuracy)."""
Quantity = int | float | str


def build_supernet(space: SearchSpace, **options: Any) -> SupernetModel:
    """The weight-sharing supernet of `space` (chain or cells); `options` are `SupernetOptions` fields
    (`identity="els"`, `bn_affine=False`, `interchoice="bias"`...)."""
    return _build_supernet(space, SupernetOptions(**options))


class TorchBatches:
    """A `Dataset` or `DataLoader` as the training loop's loader (`len`, `iter_epoch(epoch, start_batch)`).

    A Dataset is batched here, shuffled from a generator seeded by (seed, epoch), so a resumed run sees
    the batches an uninterrupted one would; a DataLoader is used as given (its own order and workers).
    """

    def __init__(self, data: Data, batch_size: int = 64, shuffle: bool = True, seed: int = 0, drop_last: bool = True):
        if not isinstance(data, DataLoader | Dataset) and not hasattr(data, "__getitem__"):
            raise ConfigError(f"data must be a torch Dataset or DataLoader, got {type(data).__name__}")
        self.data, self.batch_size, self.shuffle, self.seed, self.drop_last = data, batch_size, shuffle, seed, drop_last

    def loader(self, epoch: int) -> DataLoader:
        if isinstance(self.data, DataLoader):
            return self.data
        generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch))
        return DataLoader(
            self.data, self.batch_size, shuffle=self.shuffle, drop_last=self.drop_last, generator=generator
        )

    def __len__(self) -> int:
        return len(self.loader(0))

    def iter_epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in itertools.islice(self.loader(epoch), start_batch, None):
            x, y = batch[0], batch[1]
            yield x, y

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_epoch(0)


@dataclass(frozen=True)
class TrainResult:
    """What `fit` did: the per-epoch summaries (loss, mean/std of sampled-path accuracy), steps, time."""

    epochs: list[dict[str, Any]]
    global_step: int
    seconds: float
    run_dir: str | None


def fit(
    net: SupernetModel,
    data: Data,
    *,
    epochs: int = 1,
    batch_size: int = 64,
    lr: float = 0.05,
    sampler: str = "uniform",
    sampler_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    run_dir: str | Path | None = None,
    resume: bool = False,
    device: str = "cpu",
    **optim: Any,
) -> TrainResult:
    """Train `net` on `data` with a path sampler (`uniform`: SPOS; `fair`: FairNAS; `uniform-constrained`,
    `path-dropout`, `depth-balanced`, `sandwich`) and its own `sampler_options` (as the config's
    `train.sampler_options`, e.g. `{"bins": 5}`); one path per step drawn from (seed, epoch, step).
    `optim`: other `OptimConfig` fields (momentum, weight_decay, label_smoothing, warmup_steps, grad_clip,
    progress...). With `run_dir`, checkpoints and `metrics.jsonl` go there and `resume=True` continues it;
    without, a temporary folder."""
    known = {f.name for f in fields(OptimConfig)}
    unknown = sorted(set(optim) - known)
    if unknown:
        raise ConfigError(f"fit() has no option {unknown[0]!r}; options: {', '.join(sorted(known))}")
    optim.setdefault("progress", False)
    options = options_of(SAMPLERS.get(sampler).options, sampler_options or {}, "sampler_options")
    cfg = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, sampler=sampler, sampler_options=options, **optim
    )
    settings = Config(train=cfg)  # what a checkpoint records and a resume must match, as in the CLI
    if run_dir is not None:
        check_run(Path(run_dir), settings, resume, FIT_SECTIONS, flags=("resume=True", "run_dir"))
    loader = TorchBatches(data, batch_size, seed=seed)
    if len(loader) == 0:
        raise ConfigError(f"batch_size={batch_size} is larger than the data ({len(data)} samples): not one batch")
    paths = create_sampler(sampler, net.space, identity=net.options.identity, **options)
    runtime = runtime_for(device, cfg.amp, cfg.channels_last, cfg.deterministic)
    meta = {
        **_meta(net),
        "config_hash": config_hash(settings, FIT_SECTIONS),
        "config": config_sections(settings, FIT_SECTIONS),
    }
    initial = {k: v.detach().clone() for k, v in net.state_dict().items()}
    with tempfile.TemporaryDirectory(prefix="supernet-train-") as scratch:
        folder = Path(run_dir) if run_dir is not None else Path(scratch)
        trainer = supernet_trainer(net, paths, loader, cfg, folder, meta, runtime)
        if resume:
            trainer.resume()
        start = time.time()
        try:
            summaries = trainer.fit()
        except TrainingDiverged as e:
            raise _diverged(net, trainer, initial, e, kept=run_dir is not None) from None
    return TrainResult(summaries, trainer.global_step, time.time() - start, None if run_dir is None else str(run_dir))


FIT_SECTIONS = ("train",)
"""The config section a `fit` checkpoint records (the space is checked by its fingerprint)."""


def _diverged(
    net: SupernetModel, trainer: Trainer, initial: dict[str, torch.Tensor], error: TrainingDiverged, kept: bool
) -> TrainingDiverged:
    """Put the last good weights (the last checkpoint's, else those `fit` started from) back into `net`, whose
    weights and BatchNorm statistics the diverged step spoiled, and say what was kept."""
    path = find_checkpoint(trainer.ckpt_dir)
    if path is not None:
        ckpt = load_checkpoint(path)
        net.load_state_dict(ckpt.state["model"])
        restored = f"net holds the weights of its last checkpoint again (step {ckpt.meta.get('global_step')})"
    else:
        net.load_state_dict(initial)
        restored = "net holds the weights it had when fit() started again"
    where = f"the checkpoint is kept in {trainer.ckpt_dir}" if kept and path is not None else "nothing was kept on disk"
    return TrainingDiverged(f"{error.what}; stopped: {restored}; {where} (lower lr or set grad_clip)", error.what)


def _meta(net: SupernetModel) -> dict[str, Any]:
    space = net.space
    return {
        "kind": "supernet",
        "space": space.name,
        "space_options": dict(space.options),
        "space_fingerprint": space.fingerprint(),
        "space_description": space.to_dict(),
        "supernet": net.options.to_dict(),
        "imports": [],
    }


def evaluator(
    net: SupernetModel,
    data: Data,
    *,
    train_data: Data | None = None,
    recal_batches: int = 10,
    batch_size: int = 256,
    seed: int = 0,
    device: str = "cpu",
) -> SupernetEvaluator:
    """`evaluate(arch) -> accuracy` on `data` (all of it, in order), after re-estimating the path's BatchNorm
    statistics on `recal_batches` seeded batches of `train_data` (SPOS; none without `train_data`)."""
    val = list(TorchBatches(data, batch_size, shuffle=False, drop_last=False).iter_epoch(0))
    recal: list[torch.Tensor] = []
    if train_data is not None:
        batches = TorchBatches(train_data, batch_size, seed=derive_seed(seed, 1)).iter_epoch(0)
        recal = [x for x, _ in itertools.islice(batches, recal_batches)]
    return SupernetEvaluator(net, recal, val, runtime=runtime_for(device))


def constraints(
    max_macs: Quantity | None = None,
    min_macs: Quantity | None = None,
    max_params: Quantity | None = None,
    min_params: Quantity | None = None,
    min_acc: float | None = None,
) -> tuple[Constraint, ...]:
    """Hard bounds as data; numbers or strings with units (`"330M"`, `"5M"`, `"6.32Gi"`)."""
    q = lambda v: None if v is None else parse_quantity(v) if isinstance(v, str) else float(v)  # noqa: E731
    out = [
        Constraint(metric, q(low), q(high))
        for metric, low, high in (("macs", min_macs, max_macs), ("params", min_params, max_params))
        if low is not None or high is not None
    ]
    if min_acc is not None:
        out.append(Constraint("accuracy", float(min_acc), None))
    return tuple(out)


def make_strategy(
    space: SearchSpace,
    strategy: str = "evolution",
    *,
    bounds: Sequence[Constraint] = (),
    identity: str = "skip",
    seed: int = 0,
    **options: Any,
) -> Strategy:
    """A search strategy to drive yourself: `archs = s.ask()`, evaluate them, `s.tell([(arch, {"accuracy": a})
    for ...])` in the asked order, until `s.done`; then `s.result()`. `bounds`: from `constraints(...)`, the
    cheap ones checked on the space's cost table before anything is asked; `options`: the strategy's config
    (`population`, `iterations`, `topk`... see `supernet.search`)."""
    return _strategy(space, strategy, tuple(bounds), CostTable.build(space, identity), seed, options)


def _strategy(
    space: SearchSpace, strategy: str, bounds: tuple[Constraint, ...], table: CostTable, seed: int, options: dict
) -> Strategy:
    spec = STRATEGIES.get(strategy)
    problem = Problem(objectives=tuple(spec.objectives), constraints=tuple(bounds))
    ranges = {m: table.range(m) for m in table.metrics}
    costs = lambda arch: table.query(arch).to_dict()  # noqa: E731
    return create_strategy(strategy, space, problem, costs, random.Random(seed), ranges=ranges, **options)


def search_arch(
    target: SupernetModel | SearchSpace,
    data: Data | None = None,
    *,
    train_data: Data | None = None,
    evaluate: Callable[[Arch], float | Mapping[str, float]] | None = None,
    strategy: str = "evolution",
    max_macs: Quantity | None = None,
    min_macs: Quantity | None = None,
    max_params: Quantity | None = None,
    min_params: Quantity | None = None,
    min_acc: float | None = None,
    seed: int = 0,
    callbacks: Sequence[Callback] = (),
    **options: Any,
) -> SearchResult:
    """Search a trained supernet scored on `data` (BN recalibrated on `train_data`), or a space with your own
    `evaluate(arch) -> accuracy` (a benchmark, a proxy), under hard bounds; each arch is evaluated once and
    `callbacks(arch, metrics)` see every evaluation (costs and accuracy). Raises SearchError when the best arch
    breaks a bound (e.g. `min_acc`)."""
    space, identity = (target, "skip") if isinstance(target, SearchSpace) else (target.space, target.options.identity)
    if evaluate is None:
        if isinstance(target, SearchSpace) or data is None:
            raise ConfigError("search_arch() needs a supernet and its validation data, or a space and evaluate=")
        scorer = evaluator(target, data, train_data=train_data, seed=seed)
        evaluate, many = scorer.evaluate, lambda archs: [_metrics(s) for s in scorer.evaluate_many(archs)]
    else:
        many = None
    bounds = constraints(max_macs, min_macs, max_params, min_params, min_acc)
    table = CostTable.build(space, identity)
    found = _strategy(space, strategy, bounds, table, seed, options)
    as_metrics = lambda a: _metrics(evaluate(a))  # noqa: E731
    tell = lambda a, m: [cb(a, {**table.query(a).to_dict(), **m}) for cb in callbacks]  # noqa: E731
    result = run_search(found, as_metrics, tell, evaluate_many=many)  # a generation at once (prefix tree)
    problem = getattr(found, "problem", Problem(constraints=bounds))
    if not problem.check_all(result.best_metrics):
        wanted = " and ".join(c.describe() for c in problem.constraints)
        raise SearchError(
            f"none of the {len(result.history)} evaluated architectures satisfied {wanted}; the best accuracy "
            f"found was {result.best_metrics.get('accuracy', float('nan')):.4f}"
        )
    return result


def _metrics(value: float | Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in value.items()} if isinstance(value, Mapping) else {"accuracy": float(value)}


def arch_cost(space: SearchSpace, arch: Arch | str, identity: str = "skip") -> dict[str, float]:
    """MACs and parameters (and BitOps in quantized spaces) of an arch's stand-alone model, counted once
    per candidate by `supernet.cost` and summed."""
    return dict(CostTable.build(space, identity).query(space.parse_arch(arch)).to_dict())


def export(
    net: SupernetModel,
    arch: Arch | str,
    out_dir: str | Path | None = None,
    *,
    drop_els: bool = False,
    onnx: bool = False,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> StandaloneNet:
    """The stand-alone model of `arch` with the supernet's weights (the same function as the path). With
    `out_dir`, also `model.json` (blocks; user modules by import path), `weights.pt`, `model.pt2` and, with
    `onnx`, `model.onnx`; `mean`/`std` (your normalisation) go into `model.json`."""
    arch = net.space.parse_arch(arch)
    if out_dir is not None:
        export_path(net, {"mean": mean, "std": std}, arch, Path(out_dir), drop_els=drop_els, onnx=onnx)
    return net.export(arch, drop_els=drop_els).eval()


def load_exported(out_dir: str | Path, trust_modules: Sequence[str] = ()) -> StandaloneNet:
    """An exported model rebuilt from `model.json` and `weights.pt`: no supernet, no registration. Both files
    are untrusted: a user module named in `model.json` must already be imported by this process, or be named
    in `trust_modules` (importing runs its code; nothing is imported otherwise); a bad file is one
    CheckpointError/SpaceError line."""
    return _load_exported(Path(out_dir), trust_modules).eval()
