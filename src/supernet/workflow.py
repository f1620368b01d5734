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
from typing import TYPE_CHECKING, Any, Self

import torch

from supernet.assemble import (  # noqa: F401  (re-exported: the verbs' building blocks)
    EXECUTION_FIELDS,
    STANDALONE_SECTIONS,
    SUPERNET_SECTIONS,
    build_evaluator,
    build_space,
    check_run,
    config_hash,
    config_sections,
    eval_loader,
    load_data,
    recal_batches,
    require_batches,
    runtime_of,
    start_run,
    train_loader,
    val_batches,
)
from supernet.config import Config, save_config
from supernet.data import DatasetSplits
from supernet.errors import ConfigError
from supernet.io import atomic_write_text
from supernet.model.export import export_model
from supernet.model.factory import build_supernet
from supernet.model.protocol import SupernetModel
from supernet.model.standalone import StandaloneNet
from supernet.model.supernet import SupernetOptions
from supernet.plugins import describe as describe_imports
from supernet.retrain import train_standalone  # noqa: F401  (re-exported)
from supernet.rundir import CONFIG, RESULT
from supernet.space import Arch, SearchSpace
from supernet.supernet_run import (  # noqa: F401  (re-exported)
    checkpoint_digest,
    checkpoint_path,
    load_supernet,
    parse_arch,
    space_of,
    trained_config,
)
from supernet.train.loop import Trainer
from supernet.train.sampler import create_sampler, step_rng

if TYPE_CHECKING:
    from supernet.analysis.benchmark import BenchmarkSpec
    from supernet.search import Problem
    from supernet.search.evaluator import Evaluator


# -- supernet training ----------------------------------------------------------------------------
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
    net = runtime.prepare(build_supernet(space, options))
    sampler = create_sampler(
        train.sampler,
        space,
        identity=options.identity,
        constrained_bins=train.constrained_bins,
        drop_rate=train.drop_rate,
        sandwich_random=train.sandwich_random,
    )
    seed = train.seed
    meta = {
        "kind": "supernet",
        "space": space.name,
        "space_options": dict(space.options),
        "space_fingerprint": space.fingerprint(),
        "space_description": space.to_dict(),
        "imports": describe_imports(cfg.imports),
        "supernet": options.to_dict(),
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
        hooks.append(SplitHook(net, options.split_epoch))
    if train.health_models > 0:
        hooks.append(HealthProbe(net, train.health_models, recal_batches(cfg, splits), val_batches(cfg, splits), seed))
    # batch_size is per rank: under torchrun each global batch is sharded over the ranks
    loader = require_batches(
        train_loader(cfg, splits, train.batch_size, seed, *((dist.rank, dist.world_size) if dist else ())),
        "train.batch_size",
    )
    if dist is not None:
        dist.broadcast_module(net)
    trainer = Trainer(
        net,
        lambda x, a: net(x, a),
        lambda e, s: sampler.paths(step_rng(seed, e, s)),
        loader,
        train,
        run_dir,
        meta,
        hooks=hooks,
        dist=dist,
        runtime=runtime,
        distill=train.distill,
    )
    resumed = trainer.resume(fallback) if resume else False
    start = time.time()
    epochs = trainer.fit()
    few_shot = None
    if train.few_shot_layers and choices is None:
        from supernet.few_shot import train_few_shot

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


# -- export ----------------------------------------------------------------------------------------
def export_arch(
    checkpoint: Path,
    arch_text: str,
    out_dir: Path,
    drop_els: bool = False,
    onnx: bool = False,
) -> dict[str, Any]:
    """Write the stand-alone model of `arch_text` of the supernet at `checkpoint` (see `export_path`)."""
    net, meta = load_supernet(checkpoint)
    return export_path(net, meta, parse_arch(net.space, arch_text), out_dir, drop_els=drop_els, onnx=onnx)


def export_path(
    net: SupernetModel,
    meta: dict[str, Any],
    arch: Arch,
    out_dir: Path,
    drop_els: bool = False,
    onnx: bool = False,
) -> dict[str, Any]:
    """Write the stand-alone model of `arch` with `net`'s weights as they are (the pipeline passes a net whose
    path BatchNorms it recalibrated): config JSON, inherited weights, and a torch.export program; with `onnx`,
    also `model.onnx`, checked against PyTorch with onnxruntime (`supernet.model.onnx_export`). `meta` is the
    checkpoint's (its normalisation goes into `model.json`).

    The model computes what the supernet path computes (trained ELS folded or kept); `drop_els` drops
    shape-keeping ELS layers instead (SCARLET's rule for retraining; the result says it differs).
    """
    model = export_model(net, arch, drop_els=drop_els).eval()
    dropped = _dropped_els(net, arch) if drop_els else []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {
        **model.config,
        "normalisation": {"mean": meta.get("mean"), "std": meta.get("std")},
        "els_dropped": dropped,
        "same_function_as_supernet_path": not dropped,
    }
    atomic_write_text(out_dir / "model.json", json.dumps(config, indent=1))
    from supernet.io import atomic_write

    atomic_write(out_dir / "weights.pt", lambda f: torch.save(model.state_dict(), f))
    program = _try_torch_export(model, out_dir / "model.pt2")
    out = {
        "arch": arch.to_string(),
        "dir": str(out_dir),
        "config": str(out_dir / "model.json"),
        "weights": str(out_dir / "weights.pt"),
        "program": program,
        "els_folded": len(model.config.get("els_folded", [])),
        "els_kept": len(model.config.get("els_kept", [])),
        "els_dropped": len(dropped),
        "same_function_as_supernet_path": not dropped,
    }
    if onnx:
        from supernet.model.onnx_export import export_onnx

        out["onnx"] = export_onnx(model, out_dir / "model.onnx", meta.get("mean"), meta.get("std"))
    return out


def _dropped_els(net: SupernetModel, arch: Arch) -> list[int]:
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


# -- search ----------------------------------------------------------------------------------------
def search_problem(cfg: Config) -> Problem:
    """The strategy's objectives (from its registered spec: SPOS accuracy; SCARLET NSGA-II accuracy, -MACs,
    params weighted 0.4/0.4/0.2; CES accuracy and MACs) and the hard constraints of the search section.
    MACs/params constraints are checked before evaluation."""
    from supernet.cost import parse_quantity
    from supernet.search import STRATEGIES, Problem, constraint_from_cli

    search = cfg.search
    spec = STRATEGIES.get(search.strategy)
    q = lambda v: None if v is None else parse_quantity(v)  # noqa: E731
    constraints = [
        constraint_from_cli(m, q(lo), q(hi))
        for m, lo, hi in (
            ("macs", search.min_macs, search.max_macs),
            ("params", search.min_params, search.max_params),
            ("bitops", search.min_bitops, search.max_bitops),
        )
        if lo or hi
    ]
    window = latency_window(cfg)
    if window != (None, None):
        constraints.append(constraint_from_cli("latency_ms", *window))
    if search.min_acc is not None and not spec.applies_min_acc:  # nsga2 applies acc_min itself (SCARLET Alg. 1)
        constraints.append(constraint_from_cli("accuracy", search.min_acc, None))
    # search.cost_metric: the cost objective of multi-objective strategies (e.g. bitops instead of MACs);
    # with a latency table and the default (macs), latency (PAD-NAS CES: max accuracy, min latency)
    metric = "latency_ms" if search.latency_table and search.cost_metric == "macs" else search.cost_metric
    return Problem(objectives=_with_cost_metric(tuple(spec.objectives), metric), constraints=tuple(constraints))


def _with_cost_metric(objectives: tuple, metric: str) -> tuple:
    """The objectives with their MACs term on `metric` (e.g. bitops for a quantized space)."""
    from dataclasses import replace

    return tuple(replace(o, metric=metric) if o.metric == "macs" else o for o in objectives)


def latency_window(cfg: Config) -> tuple[float | None, float | None]:
    """(min, max) of `search.min_latency/max_latency` in milliseconds; they need `search.latency_table`."""
    from supernet.cost import parse_duration_ms

    search = cfg.search
    window = tuple(None if v is None else parse_duration_ms(v) for v in (search.min_latency, search.max_latency))
    if window != (None, None) and not search.latency_table:
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


def search_supernet(
    cfg: Config, checkpoint: Path, run_dir: Path, resume: bool = False, splits: DatasetSplits | None = None
) -> dict[str, Any]:
    """Search a trained supernet under the configured constraints; `splits`: the data it was trained with,
    when the caller has it loaded already (the pipeline), else loaded from the checkpoint's data section.

    Every evaluation goes to `run_dir/journal.sqlite` as it happens and to the supernet run's
    shared `eval-cache.sqlite` (keyed by checkpoint hash + evaluation settings), so a killed search
    resumes without re-evaluating and later searches reuse earlier evaluations.
    """
    net, meta = load_supernet(checkpoint)
    cfg = searched_config(cfg, meta)  # evaluate on the supernet's data; config.yaml records its settings
    evaluator = build_evaluator(cfg, net, splits if splits is not None else load_data(cfg))
    table = search_cost_table(cfg, net.space, net.options.identity)
    key = _evaluation_key(cfg, checkpoint)
    shared = _evaluation_cache(checkpoint_path(Path(checkpoint)).parent, Path(run_dir))
    return _run_search(
        cfg,
        net.space,
        table,
        lambda a: {"accuracy": evaluator.evaluate(a)},
        key,
        Path(run_dir),
        resume,
        shared,
        {"checkpoint": str(checkpoint), "evaluation": asdict(cfg.eval)},  # the estimator its scores come from
        evaluator.runtime.device,
    )


def searched_config(cfg: Config, meta: dict[str, Any]) -> Config:
    """`cfg` with the searched supernet's own data, space, supernet and train sections (from its
    checkpoint), so that a search's config.yaml records what was searched, not defaults."""
    from supernet.config import SpaceConfig, config_from_dict

    trained = meta.get("config") or {}
    execution = {k: v for k, v in asdict(cfg.train).items() if k in EXECUTION_FIELDS}  # this run's, not the training's
    train = config_from_dict({"train": {**trained["train"], **execution}}).train if "train" in trained else cfg.train
    return replace(
        cfg,
        data=type(cfg.data)(**meta["data"]),
        train=train,
        space=SpaceConfig(name=meta["space"], preset=None, options=dict(meta["space_options"])),
        supernet=SupernetOptions(**meta["supernet"]),
    )


def _evaluation_cache(supernet_dir: Path, run_dir: Path) -> Path:
    """The shared evaluation cache beside the checkpoint, or, when that folder is read-only, one in the
    search's own run directory (said on stderr)."""
    if writable_dir(supernet_dir):
        return supernet_dir / "eval-cache.sqlite"
    print(
        f"search: {supernet_dir} is read-only; the evaluation cache is kept in {run_dir / 'eval-cache.sqlite'}",
        file=sys.stderr,
        flush=True,
    )
    return run_dir / "eval-cache.sqlite"


def writable_dir(folder: Path) -> bool:
    """Whether a file can be created in `folder` (tried, since permissions are not the only reason)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def search_table(
    cfg: Config, table_csv: Path, space: SearchSpace, run_dir: Path, identity: str = "skip", resume: bool = False
) -> dict[str, Any]:
    """Search a table of known accuracies (`arch,accuracy[,macs,params,...]`) instead of a supernet."""
    from supernet.search import TableEvaluator

    evaluator = TableEvaluator(table_csv, space)
    digest = hashlib.sha256(Path(table_csv).read_bytes()).hexdigest()[:16]
    return _search_known(cfg, space, evaluator, identity, f"table:{digest}", run_dir, resume, {"table": str(table_csv)})


def search_benchmark(
    cfg: Config, spec: BenchmarkSpec, space: SearchSpace, run_dir: Path, identity: str = "skip", resume: bool = False
) -> dict[str, Any]:
    """Search a published benchmark's mean accuracies (e.g. NAS-Bench-Macro) instead of a supernet."""
    from supernet.analysis.benchmark import BenchmarkEvaluator, load_benchmark

    evaluator = BenchmarkEvaluator(load_benchmark(spec.name, spec.path, space), space)
    digest = hashlib.sha256(Path(spec.path).read_bytes()).hexdigest()[:16]
    source = {"benchmark": spec.name, "benchmark_file": str(spec.path)}
    return _search_known(cfg, space, evaluator, identity, f"benchmark:{digest}", run_dir, resume, source)


def _search_known(
    cfg: Config,
    space: SearchSpace,
    evaluator: Evaluator,
    identity: str,
    key: str,
    run_dir: Path,
    resume: bool,
    source: dict[str, Any],
) -> dict[str, Any]:
    """Search accuracies known in advance (`evaluator.evaluate(arch)`: a table, a benchmark), journaled
    under `key`; `source` names them in result.json."""
    table = search_cost_table(cfg, space, identity)
    accuracy = lambda a: {"accuracy": evaluator.evaluate(a)}  # noqa: E731
    return _run_search(cfg, space, table, accuracy, key, Path(run_dir), resume, None, source)


def _evaluation_key(cfg: Config, checkpoint: Path) -> str:
    from supernet.search import evaluation_key

    return evaluation_key(checkpoint_digest(checkpoint), {"eval": asdict(cfg.eval), "data": asdict(cfg.data)})


class SearchProgress:
    """A tqdm bar of evaluated archs and the best accuracy (as training has); without it, a plain
    stderr line every 10 evaluations, which reads well in log files."""

    def __init__(self, bar: bool) -> None:
        self.evaluated, self.best = 0, float("-inf")
        self.wanted, self.bar = bar, None

    def update(self, metrics: dict[str, float], step: Any) -> None:
        self.evaluated += 1
        self.best = max(self.best, metrics.get("accuracy", float("-inf")))
        if self.wanted and self.bar is None:  # created at the first evaluation: an early error stays one line
            from tqdm import tqdm

            self.bar = tqdm(desc="search", unit="arch", leave=False, dynamic_ncols=True)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(best=f"{self.best:.4f}", generation=step)
        elif self.evaluated % 10 == 0:
            print(
                f"search: {self.evaluated} archs evaluated (generation {step}), best accuracy {self.best:.4f}",
                file=sys.stderr,
                flush=True,
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_search(
    cfg: Config,
    space: SearchSpace,
    table: Any,
    evaluate: Any,
    key: str,
    run_dir: Path,
    resume: bool,
    shared_cache: Path | None,
    source: dict[str, str],
    device: torch.device | None = None,
) -> dict[str, Any]:
    import random
    from contextlib import ExitStack

    from supernet.search import Journal, create_strategy, run_search
    from supernet.search.distributed import init_from_env, is_main_rank, split_evaluate
    from supernet.search.journal import write_identity
    from supernet.search.plots import plot_pareto, plot_progress

    distributed = init_from_env(device or "cpu")
    journal_path = run_dir / "journal.sqlite"
    problem = search_problem(cfg)
    identity = _check_journal(journal_path, resume, key, space, problem, source.get("evaluation"))
    if distributed:
        import torch.distributed as dist

        dist.barrier()  # every rank has checked before rank 0 creates the journal
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / CONFIG)
    costs = lambda arch: table.query(arch).to_dict()  # noqa: E731
    ranges = {m: table.range(m) for m in table.metrics}
    strategy = create_strategy(
        cfg.search.strategy,
        space,
        problem,
        costs,
        random.Random(cfg.search.seed),
        ranges=ranges,
        **strategy_options(cfg),
    )
    start, spent = time.time(), {"evaluate": 0.0}
    with ExitStack() as stack:
        writers = (journal_path, shared_cache) if is_main_rank() else ()  # rank 0 writes, all ranks read
        journals = [stack.enter_context(Journal(p)) for p in writers if p is not None]
        if is_main_rank():
            write_identity(journals[0], identity)  # the run's own journal (not the shared cache)
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

        result = run_search(
            strategy, timed, record if is_main_rank() else None, cache, split_evaluate(timed) if distributed else None
        )
    applied = getattr(strategy, "problem", problem)  # nsga2 adds its acc_min constraint
    require_feasible(applied, result.best_metrics, len(result.history), journal_path)
    out = {
        **result.to_dict(),
        "strategy": cfg.search.strategy,
        "problem": applied.describe(),
        **source,
        "seconds": time.time() - start,
        "eval_seconds": spent["evaluate"],
        "evaluations": len({row["arch"] for row in result.history}),
    }
    if cfg.search.strategy == "nsga2":
        out["acc_min"] = strategy.config.acc_min  # type: ignore[attr-defined]
    if is_main_rank():
        atomic_write_text(run_dir / RESULT, json.dumps(out, indent=1))
        plot_pareto(result, run_dir / "pareto.png")
        plot_progress({cfg.search.strategy: result}, run_dir / "progress.png")
    return out


def _check_journal(
    journal: Path, resume: bool, key: str, space: SearchSpace, problem: Problem, evaluation: dict | None
) -> dict[str, Any]:
    """The search's identity, after refusing (nothing written) a run directory whose journal belongs to
    a search we must not touch: any without `resume`, one of another search with it."""
    from supernet.search.journal import check_resumable, search_identity

    constraints = " and ".join(c.describe() for c in problem.constraints) or "none"
    identity = search_identity(key, space, constraints, evaluation)
    if journal.exists() and not resume:
        raise ConfigError(
            f"{journal.parent} already holds a search journal; pass --resume to continue it "
            f"or choose another --run-dir (nothing was overwritten)"
        )
    if journal.exists():
        check_resumable(journal, identity, key)
    return identity


def require_feasible(problem: Problem, best_metrics: dict[str, float], evaluated: int, journal: Path) -> None:
    """A search whose best arch breaks a constraint (e.g. `--min-acc`) found nothing: SearchError."""
    from supernet.errors import SearchError

    if problem.check_all(best_metrics):
        return
    wanted = " and ".join(c.describe() for c in problem.constraints)
    best = best_metrics.get("accuracy", float("nan"))
    raise SearchError(
        f"none of the {evaluated} evaluated architectures satisfied {wanted}; the best accuracy "
        f"found was {best:.4f} (evaluations kept in {journal})"
    )
