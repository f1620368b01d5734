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
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from supernet.config.rules import check_arguments
from supernet.config.schema import Config, SearchConfig, TrainConfig, options_of
from supernet.core.device import runtime_for
from supernet.core.errors import ConfigError, DatasetError, SpaceError
from supernet.cost import CostTable, parse_quantity
from supernet.data import derive_seed
from supernet.jobs.export import export_path
from supernet.jobs.export import load_exported as _load_exported
from supernet.model.factory import build_supernet as _build_supernet
from supernet.model.protocol import SupernetModel
from supernet.model.standalone import StandaloneNet
from supernet.model.supernet import SupernetOptions
from supernet.ops.modules import LayerChoice
from supernet.ops.modules import module_space as _module_space
from supernet.runs.build import check_run, config_hash, config_sections
from supernet.search import STRATEGIES, Constraint, Problem, SearchResult, Strategy, create_strategy, run_search
from supernet.search.strategy import require_feasible
from supernet.search.supernet_evaluator import SupernetEvaluator
from supernet.space import Arch, SearchSpace
from supernet.train.checkpoint import find_checkpoint, load_checkpoint
from supernet.train.loop import OptimConfig, Trainer, TrainingDiverged
from supernet.train.sampler import SAMPLERS, create_sampler
from supernet.train.wiring import supernet_meta, supernet_trainer

Data = Dataset | DataLoader
"""What training and search read: a `Dataset` of (image, label) pairs (map-style, or an `IterableDataset`), or
a `DataLoader` of (images, labels) batches."""
Callback = Callable[[Arch, dict[str, float]], None]
"""`callback(arch, metrics)`, called after each architecture a search evaluates (its costs and accuracy)."""
Quantity = int | float | str


def module_space(
    layers: Sequence[LayerChoice],
    input_shape: Sequence[int],
    num_classes: int,
    stem_channels: int = 16,
    stem_stride: int = 1,
    name: str = "modules",
) -> SearchSpace:
    """A chain space over your own modules (`supernet.ops.modules.module_space`), its numbers checked first by
    the config's range rules (`supernet.config.rules`): channels, strides and `num_classes` >= 1."""
    hints = typing.get_type_hints(_module_space)
    sizes = {"num_classes": num_classes, "stem_channels": stem_channels, "stem_stride": stem_stride}
    check_arguments("module_space", sizes, hints, "module_space()")
    _check_input_shape(input_shape)
    layer_hints = typing.get_type_hints(LayerChoice)
    for index, layer in enumerate(layers):
        if not isinstance(layer, LayerChoice):
            raise SpaceError(f"module_space(): layer {index} must be a LayerChoice, got {type(layer).__name__}")
        values = {"channels": layer.channels, "stride": layer.stride}
        check_arguments(LayerChoice, values, layer_hints, f"module_space(): LayerChoice {index}")
    return _module_space(layers, input_shape, num_classes, stem_channels, stem_stride, name)


def _check_input_shape(shape: Sequence[int]) -> None:
    ok = isinstance(shape, Sequence) and len(shape) == 3
    if not ok or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape):
        raise SpaceError(f"module_space(): input_shape must be (channels, height, width), ints >= 1, got {shape!r}")


def build_supernet(space: SearchSpace, **options: Any) -> SupernetModel:
    """The weight-sharing supernet of `space` (chain or cells); `options` are `SupernetOptions` fields
    (`identity="els"`, `bn_affine=False`, `interchoice="bias"`...), range-checked by the config's rules.
    Every candidate of a chain space is run once on a dummy input, so that one of the wrong shape is named
    here rather than failing (or training silently) later."""
    known = {f.name for f in fields(SupernetOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"build_supernet() has no option {unknown[0]!r}; options: {', '.join(sorted(known))}")
    check_arguments(SupernetOptions, options, typing.get_type_hints(SupernetOptions), "build_supernet()")
    net = _build_supernet(space, SupernetOptions(**options))
    if space.topology == "chain":
        check_candidate_shapes(net)
    return net


def check_candidate_shapes(net: SupernetModel) -> None:
    """Run the stem, every candidate of every layer and the head on one zero image (eval mode, no gradient,
    so no statistic changes); raise SpaceError naming the layer and candidate that fails or whose output
    has not the layer's channels or not the shape of the layer's other candidates."""
    space, was_training = net.space, net.training
    net.eval()
    try:
        with torch.no_grad():
            x = net.stem(torch.zeros(1, *space.input_shape))
            for index, layer in enumerate(space.layers):
                x = _layer_output(net, index, layer.choices, layer.out_channels, x)
            net.head(x)
    finally:
        net.train(was_training)


def _layer_output(net: Any, index: int, ops: Sequence[str], channels: int, x: torch.Tensor) -> torch.Tensor:
    shapes: dict[str, tuple[int, ...]] = {}
    out = x
    for op in ops:
        try:
            out = net.block(index, op)(x, **net.select(index, op))
        except Exception as e:  # noqa: BLE001 (a user module may raise anything: name where it happened)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise SpaceError(
                f"layer {index} candidate {op!r} fails on its input of shape {tuple(x.shape[1:])}: {first}"
            ) from None
        shapes[op] = tuple(out.shape[1:])
        if out.dim() != 4 or out.shape[1] != channels:
            raise SpaceError(
                f"layer {index} candidate {op!r} gives shape {shapes[op]} for input {tuple(x.shape[1:])}; "
                f"the layer's output has {channels} channels"
            )
        if shapes[op] != shapes[ops[0]]:
            raise SpaceError(
                f"layer {index} candidate {op!r} gives shape {shapes[op]}, candidate {ops[0]!r} gives "
                f"{shapes[ops[0]]} (input {tuple(x.shape[1:])}): a layer's candidates must agree"
            )
    return out


class TorchBatches:
    """A `Dataset` or `DataLoader` as the training loop's loader (`len`, `iter_epoch(epoch, start_batch)`).

    A Dataset is batched here, shuffled from a generator seeded by (seed, epoch), so a resumed run sees
    the batches an uninterrupted one would; an IterableDataset is batched in its own order (one without
    `len` is read once to count its batches); a DataLoader is used as given (its own order and workers).
    """

    def __init__(self, data: Data, batch_size: int = 64, shuffle: bool = True, seed: int = 0, drop_last: bool = True):
        if not isinstance(data, DataLoader | Dataset) and not hasattr(data, "__getitem__"):
            raise ConfigError(f"data must be a torch Dataset or DataLoader, got {type(data).__name__}")
        self.data, self.batch_size, self.shuffle, self.seed, self.drop_last = data, batch_size, shuffle, seed, drop_last
        self._length: int | None = None

    def loader(self, epoch: int) -> DataLoader:
        if isinstance(self.data, DataLoader):
            return self.data
        if isinstance(self.data, IterableDataset):  # its own order: a DataLoader cannot shuffle it
            return DataLoader(self.data, self.batch_size, drop_last=self.drop_last)
        generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch))
        return DataLoader(
            self.data, self.batch_size, shuffle=self.shuffle, drop_last=self.drop_last, generator=generator
        )

    def __len__(self) -> int:
        if self._length is None:
            loader = self.loader(0)
            try:
                self._length = len(loader)
            except TypeError:  # an IterableDataset without __len__: count its batches once
                self._length = sum(1 for _ in loader)
        return self._length

    def iter_epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in itertools.islice(self.loader(epoch), start_batch, None):
            yield image_label_pair(batch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_epoch(0)


def image_label_pair(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels) of a collated batch; anything else (dict samples, 1-tuples, labels that are not one
    int per sample) is a one-line DatasetError saying what a sample must be."""
    ok = isinstance(batch, list | tuple) and len(batch) >= 2
    if ok and isinstance(batch[0], torch.Tensor) and isinstance(batch[1], torch.Tensor) and batch[1].dim() == 1:
        return batch[0], batch[1]
    raise DatasetError(
        f"data: each sample must be an (image, label) pair: a (C, H, W) image tensor and an int label; "
        f"a batch of them came as {_batch_kind(batch)}"
    )


def _batch_kind(batch: Any) -> str:
    if isinstance(batch, Mapping):
        return f"a dict with keys {sorted(map(str, batch))[:5]} (give a Dataset of (image, label) tuples)"
    if isinstance(batch, list | tuple):
        return f"a {len(batch)}-tuple of {', '.join(_describe(v) for v in batch[:3])}"
    return _describe(batch)


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
    device: str = "auto",
    pairwise_rank_weight: float = 0.0,
    **optim: Any,
) -> TrainResult:
    """Train `net` on `data` with a path sampler (`uniform`: SPOS; `fair`: FairNAS; `uniform-constrained`,
    `path-dropout`, `depth-balanced`, `sandwich`, `deep-first`) and its own `sampler_options` (as the config's
    `train.sampler_options`, e.g. `{"bins": 5}`); the step's paths drawn from (seed, epoch, step).
    `pairwise_rank_weight`: the pairwise ranking loss with the space's cost as prior (the config's
    `train.pairwise_rank_weight`; needs two paths per step, e.g. `sampler_options={"paths": 2}`).
    `optim`: other `OptimConfig` fields (momentum, weight_decay, label_smoothing, warmup_steps, grad_clip,
    progress...). With `run_dir`, checkpoints and `metrics.jsonl` go there and `resume=True` continues it;
    without, a temporary folder. `device="auto"` (as the CLI): CUDA when there is one, else the CPU.
    `TrainResult.seconds` is the whole call."""
    start = time.time()
    known = {f.name for f in fields(OptimConfig)}
    unknown = sorted(set(optim) - known)
    if unknown:
        raise ConfigError(f"fit() has no option {unknown[0]!r}; options: {', '.join(sorted(known))}")
    numbers = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, **optim}
    check_arguments(OptimConfig, numbers, typing.get_type_hints(OptimConfig), "fit()")
    ranking = {"pairwise_rank_weight": pairwise_rank_weight}
    check_arguments(TrainConfig, ranking, typing.get_type_hints(TrainConfig), "fit()")
    optim.setdefault("progress", False)
    options = options_of(SAMPLERS.get(sampler).options, sampler_options or {}, "sampler_options")
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        sampler=sampler,
        sampler_options=options,
        **ranking,
        **optim,
    )
    settings = Config(train=cfg)  # what a checkpoint records and a resume must match, as in the CLI
    if run_dir is not None:
        check_run(Path(run_dir), settings, resume, FIT_SECTIONS, flags=("resume=True", "run_dir"))
    loader = TorchBatches(data, batch_size, seed=seed)
    if len(loader) == 0:
        raise ConfigError(f"fit(): batch_size={batch_size} is larger than the data: not one batch")
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
    return supernet_meta(net.space, net.options, [])


def evaluator(
    net: SupernetModel,
    data: Data,
    *,
    train_data: Data | None = None,
    recal_batches: int = 10,
    batch_size: int = 256,
    seed: int = 0,
    device: str = "auto",
) -> SupernetEvaluator:
    """`evaluate(arch) -> accuracy` on `data` (all of it, in order), after re-estimating the path's BatchNorm
    statistics on `recal_batches` seeded batches of `train_data` (SPOS; none without `train_data`)."""
    val = list(TorchBatches(data, batch_size, shuffle=False, drop_last=False).iter_epoch(0))
    _check_validation(val, net.space.num_classes)
    recal: list[torch.Tensor] = []
    if train_data is not None:
        batches = TorchBatches(train_data, batch_size, seed=derive_seed(seed, 1)).iter_epoch(0)
        recal = [x for x, _ in itertools.islice(batches, recal_batches)]
    return SupernetEvaluator(net, recal, val, runtime=runtime_for(device))


def _check_validation(batches: Sequence[tuple[torch.Tensor, torch.Tensor]], num_classes: int) -> None:
    """An empty validation set or labels that are not class indices of the space would score every arch 0.0:
    refuse them in one line."""
    if not batches or sum(len(y) for _, y in batches) == 0:
        raise ConfigError("evaluator(): the validation data is empty; every arch would score 0.0")
    for _, y in batches:
        if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype == torch.bool or y.dim() != 1:
            raise ConfigError(
                f"evaluator(): labels must be class indices (ints), got {_describe(y)}; samples are (image, label)"
            )
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise ConfigError(f"evaluator(): label {bad} is not a class index of the space (0..{num_classes - 1})")


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def constraints(
    max_macs: Quantity | None = None,
    min_macs: Quantity | None = None,
    max_params: Quantity | None = None,
    min_params: Quantity | None = None,
    min_acc: float | None = None,
) -> tuple[Constraint, ...]:
    """Hard bounds as data; numbers or strings with units (`"330M"`, `"5M"`, `"6.32Gi"`); `min_acc` in [0, 1]
    (the config's `search.min_acc` rule), checked here, before any search starts."""
    check_arguments(SearchConfig, {"min_acc": min_acc}, typing.get_type_hints(SearchConfig), "constraints()")
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
    bounds: Sequence[Constraint] | Mapping[str, Quantity] = (),
    identity: str = "skip",
    seed: int = 0,
    **options: Any,
) -> Strategy:
    """A search strategy to drive yourself: `archs = s.ask()`, evaluate them, `s.tell([(arch, {"accuracy": a})
    for ...])` in the asked order, until `s.done`; then `s.result()`. `bounds`: from `constraints(...)`, the
    cheap ones checked on the space's cost table before anything is asked; `options`: the strategy's config
    (`population`, `iterations`, `topk`... see `supernet.search`); a mapping of `constraints`' keywords
    (`{"max_macs": "700K"}`) is taken too."""
    return _strategy(space, strategy, _bounds(bounds), CostTable.build(space, identity), seed, options)


def _bounds(bounds: Sequence[Constraint] | Mapping[str, Quantity]) -> tuple[Constraint, ...]:
    """`bounds` as constraints: a mapping is `constraints(**bounds)` (its keys checked), a sequence must hold
    `Constraint`s."""
    if isinstance(bounds, Mapping):
        known = ("max_macs", "min_macs", "max_params", "min_params", "min_acc")
        unknown = sorted(str(k) for k in set(bounds) - set(known))
        if unknown:
            raise ConfigError(f"make_strategy(): bounds has no key {unknown[0]!r}; keys: {', '.join(known)}")
        return constraints(**bounds)
    if isinstance(bounds, str | bytes) or not isinstance(bounds, Sequence):
        raise ConfigError(
            f"make_strategy(): bounds must be supernet.constraints(...) or a mapping such as "
            f"{{'max_macs': '700K'}}, got {type(bounds).__name__}"
        )
    wrong = [b for b in bounds if not isinstance(b, Constraint)]
    if wrong:
        raise ConfigError(
            f"make_strategy(): bounds must hold Constraints (from supernet.constraints(...)), got {wrong[0]!r}"
        )
    return tuple(bounds)


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
    device: str = "auto",
    **options: Any,
) -> SearchResult:
    """Search a trained supernet scored on `data` (BN recalibrated on `train_data`), or a space with your own
    `evaluate(arch) -> accuracy` (a benchmark, a proxy), under hard bounds; each arch is evaluated once and
    `callbacks(arch, metrics)` see every evaluation (costs and accuracy). Raises SearchError when the best arch
    breaks a bound (e.g. `min_acc`). `device` (default `auto`) is where a supernet's archs are scored."""
    space, identity = (target, "skip") if isinstance(target, SearchSpace) else (target.space, target.options.identity)
    if evaluate is None:
        if isinstance(target, SearchSpace) or data is None:
            raise ConfigError("search_arch() needs a supernet and its validation data, or a space and evaluate=")
        scorer = evaluator(target, data, train_data=train_data, seed=seed, device=device)
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
    require_feasible(problem, result.best_metrics, len(result.history))
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
