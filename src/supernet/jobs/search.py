"""The `search` verb: search a trained supernet, a table of accuracies or a benchmark under hard constraints."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import torch

from supernet.config.schema import Config, save_config
from supernet.core.errors import ConfigError
from supernet.core.events import NoEvents, open_events, require_tensorboard
from supernet.core.io import atomic_write_text
from supernet.core.logs import get_logger
from supernet.core.rundir import CONFIG, RESULT
from supernet.data import DatasetSplits
from supernet.jobs.scores import Scores
from supernet.jobs.search_predictor import check_predictor, predicted_identity, predicted_scores, refuse_predictor
from supernet.model.supernet import SupernetOptions
from supernet.runs.build import EXECUTION_FIELDS, build_evaluator, eval_settings, load_data
from supernet.runs.load import checkpoint_digest, checkpoint_path, load_supernet
from supernet.space import Arch, SearchSpace

if TYPE_CHECKING:
    from supernet.analysis.benchmark import BenchmarkSpec
    from supernet.search import Problem
    from supernet.search.evaluator import Evaluator

logger = get_logger(__name__)
JOURNAL = "journal.sqlite"  # a search run directory's own journal


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
    low, high = window
    if low is not None and high is not None and low > high:
        raise ConfigError(
            f"the latency window is inverted: --min-latency {low:g} ms is above --max-latency {high:g} ms "
            f"(the window is min <= latency_ms <= max)"
        )
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
    """`search.options` checked by the strategy's options dataclass; a strategy that applies `search.min_acc`
    itself (SCARLET's acc_min) gets it as its option."""
    from supernet.config.schema import options_of
    from supernet.search import STRATEGIES

    spec = STRATEGIES.get(cfg.search.strategy)
    options = options_of(spec.config, cfg.search.options, "search.options")
    if spec.applies_min_acc and cfg.search.min_acc is not None:
        options["acc_min"] = cfg.search.min_acc
    return options


def search_supernet(
    cfg: Config, checkpoint: Path, run_dir: Path, resume: bool = False, splits: DatasetSplits | None = None
) -> dict[str, Any]:
    """Search a trained supernet under the configured constraints; `splits`: the data it was trained with,
    when the caller has it loaded already (the pipeline), else loaded from the checkpoint's data section.

    Every evaluation goes to `run_dir/journal.sqlite` as it happens and to the supernet run's
    shared `eval-cache.sqlite` (keyed by checkpoint hash + evaluation settings), so a killed search
    resumes without re-evaluating and later searches reuse earlier evaluations.
    """
    check_accuracy_bar(cfg)
    check_predictor(cfg)
    cfg = without_default_accuracy_bar(cfg)
    net, meta = load_supernet(checkpoint)
    cfg = searched_config(cfg, meta)  # evaluate on the supernet's data; config.yaml records its settings
    evaluator = build_evaluator(cfg, net, splits if splits is not None else load_data(cfg))
    table = search_cost_table(cfg, net.space, net.options.identity)
    key = _evaluation_key(cfg, checkpoint)
    shared = _evaluation_cache(checkpoint_path(Path(checkpoint)).parent, Path(run_dir))
    race = _racing(cfg, evaluator) if cfg.search.racing else None
    scores = Scores(
        lambda a: {"accuracy": evaluator.evaluate(a)},
        lambda archs: [{"accuracy": s} for s in evaluator.evaluate_many(archs)],  # a generation on its prefix tree
        key,
        shared,
        {"checkpoint": str(checkpoint), "evaluation": eval_settings(cfg)},  # the estimator its scores come from
    )
    journal_key, evaluation = key, scores.source["evaluation"]
    if cfg.search.predictor != "none":
        journal_key, evaluation = predicted_identity(cfg.search, scores)
    identity = _check_journal(cfg, net.space, Path(run_dir), resume, journal_key, evaluation)  # before any scoring
    if cfg.search.predictor != "none":
        scores = predicted_scores(cfg.search, net.space, scores)
    return _run_search(cfg, net.space, table, scores, identity, Path(run_dir), evaluator.runtime.device, race)


def check_accuracy_bar(cfg: Config) -> None:
    """Refuse an accuracy bar (`search.min_acc`, nsga2's `search.options.acc_min`) where the supernet's score
    is not an accuracy: with `eval.metric: loss` the score is exp(-validation loss) (0.3 for a loss of 1.2),
    so a bar such as 0.9 would reject every arch, and a search would run for nothing."""
    if cfg.eval.metric == "accuracy":
        return
    bars = {"search.min_acc": cfg.search.min_acc, "search.options.acc_min": cfg.search.options.get("acc_min")}
    given = [(name, value) for name, value in bars.items() if value is not None]
    if given:
        name, value = given[0]
        raise ConfigError(
            f"{name} ({value}) is an accuracy, but eval.metric is {cfg.eval.metric} "
            "(the score is exp(-validation loss)); drop the bar or add --set eval.metric=accuracy"
        )


def without_default_accuracy_bar(cfg: Config) -> Config:
    """`cfg` without nsga2's default accuracy bar (SCARLET's acc_min 0.4) where the score is exp(-loss): that
    bar is an accuracy, and exp(-loss) is below 0.4 for every loss above 0.92, so it would reject most archs."""
    from supernet.search import STRATEGIES

    if cfg.eval.metric == "accuracy" or not STRATEGIES.get(cfg.search.strategy).applies_min_acc:
        return cfg
    logger.info(f"search: no accuracy bar (acc_min): eval.metric is {cfg.eval.metric}, not accuracy")
    return replace(cfg, search=replace(cfg.search, options={**cfg.search.options, "acc_min": None}))


def _racing(cfg: Config, evaluator: Any) -> Any:
    """`(archs, threshold) -> metrics` with the images each score used (`SupernetEvaluator.race_many`); only
    for strategies whose one objective is accuracy (their top-k is what racing keeps)."""
    objectives = search_problem(cfg).objectives
    if [o.metric for o in objectives] != ["accuracy"]:
        raise ConfigError(
            f"search.racing needs a strategy whose only objective is accuracy (evolution, random); "
            f"{cfg.search.strategy} optimises {', '.join(o.metric for o in objectives)}"
        )
    return lambda archs, threshold: [
        {"accuracy": s, "images": n} for s, n in evaluator.race_many(archs, threshold)
    ], evaluator.val_images


def racing_threshold(strategy: Any) -> float | None:
    """The accuracy an arch must reach to enter the strategy's current top-k (None: fewer than k known yet)."""
    board, k = getattr(strategy, "board", None), getattr(strategy, "k", None)
    top = board.top(k) if board is not None and k else []
    return min(m["accuracy"] for _, m in top) if top and len(top) >= k else None


def searched_config(cfg: Config, meta: dict[str, Any]) -> Config:
    """`cfg` with the searched supernet's own data, space, supernet and train sections (from its
    checkpoint), so that a search's config.yaml records what was searched, not defaults."""
    from supernet.config.schema import SpaceConfig, config_from_dict

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
    search's own run directory (a warning)."""
    if writable_dir(supernet_dir):
        return supernet_dir / "eval-cache.sqlite"
    logger.warning(
        f"search: {supernet_dir} is read-only; the evaluation cache is kept in {run_dir / 'eval-cache.sqlite'}"
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
    refuse_predictor(cfg)
    from supernet.search import TableEvaluator

    evaluator = TableEvaluator(table_csv, space)
    digest = hashlib.sha256(Path(table_csv).read_bytes()).hexdigest()[:16]
    return _search_known(cfg, space, evaluator, identity, f"table:{digest}", run_dir, resume, {"table": str(table_csv)})


def search_benchmark(
    cfg: Config, spec: BenchmarkSpec, space: SearchSpace, run_dir: Path, identity: str = "skip", resume: bool = False
) -> dict[str, Any]:
    """Search a published benchmark's mean accuracies (e.g. NAS-Bench-Macro) instead of a supernet."""
    refuse_predictor(cfg)
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
    scores = Scores(accuracy, None, key, None, source)
    accepted = _check_journal(cfg, space, Path(run_dir), resume, key, source.get("evaluation"))
    return _run_search(cfg, space, table, scores, accepted, Path(run_dir))


def _evaluation_key(cfg: Config, checkpoint: Path) -> str:
    from supernet.search import evaluation_key

    return evaluation_key(checkpoint_digest(checkpoint), {"eval": eval_settings(cfg), "data": asdict(cfg.data)})


class SearchProgress:
    """A tqdm bar of evaluated archs and the best accuracy (as training has); without it, an INFO log
    line every 10 evaluations, which reads well in log files. With `events` (TensorBoard) the best accuracy
    so far at the end of each generation (of each evaluation for a strategy without generations)."""

    def __init__(self, bar: bool, events: NoEvents | None = None) -> None:
        self.evaluated, self.best = 0, float("-inf")
        self.wanted, self.bar = bar, None
        self.events = events if events is not None else NoEvents()
        self.point: int | None = None  # the generation whose best-so-far is not written yet

    def update(self, metrics: dict[str, float], step: Any) -> None:
        point = step if isinstance(step, int) else self.evaluated + 1
        if self.point is not None and point != self.point:
            self._write_best()
        self.point = point
        self.evaluated += 1
        self.best = max(self.best, metrics.get("accuracy", float("-inf")))
        if self.wanted and self.bar is None:  # created at the first evaluation: an early error stays one line
            from tqdm import tqdm

            self.bar = tqdm(desc="search", unit="arch", leave=False, dynamic_ncols=True)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(best=f"{self.best:.4f}", generation=step)
        elif self.evaluated % 10 == 0:
            logger.info(f"search: {self.evaluated} archs evaluated (generation {step}), best accuracy {self.best:.4f}")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.point is not None:
            self._write_best()
        if self.bar is not None:
            self.bar.close()

    def _write_best(self) -> None:
        self.events.scalars(self.point, {"search/best_accuracy": self.best, "search/evaluated": self.evaluated})


def _run_search(
    cfg: Config,
    space: SearchSpace,
    table: Any,
    scores: Scores,
    identity: dict[str, Any],
    run_dir: Path,
    device: torch.device | None = None,
    race: tuple[Any, int] | None = None,
) -> dict[str, Any]:
    """Search `scores` (its `evaluate_many`, when given, scores each generation's missing archs together: on
    each rank, its share of them) into `run_dir`, whose journal `_check_journal` accepted as `identity`.
    `race`: (`(archs, threshold) -> metrics` with `images`, the full number of validation images): racing
    against the strategy's top-k; a score that used fewer images is journaled in the run's journal only, never
    in the shared evaluation cache."""
    import random
    from contextlib import ExitStack

    from supernet.search import STRATEGIES, Journal, create_strategy, run_search
    from supernet.search.distributed import init_from_env, is_main_rank, split_evaluate
    from supernet.search.journal import write_identity
    from supernet.search.plots import plot_pareto, plot_progress
    from supernet.search.strategy import require_feasible

    require_tensorboard(cfg.log.tensorboard)
    distributed = init_from_env(device or "cpu")
    journal_path = run_dir / JOURNAL
    problem = search_problem(cfg)
    evaluate, evaluate_many, key, shared_cache = scores.evaluate, scores.evaluate_many, scores.key, scores.cache
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
    logger.debug(
        f"search: {cfg.search.strategy} over {space.name} ({space.size:.3g} archs), constraints: "
        f"{' and '.join(c.describe() for c in problem.constraints) or 'none'}; journal {journal_path}"
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

        def timed_many(archs: list[Arch]) -> list[dict[str, float]]:
            t = time.time()
            metrics = evaluate_many(archs)
            spent["evaluate"] += time.time() - t
            return metrics

        if race is not None:
            evaluate_many = lambda archs: race[0](archs, racing_threshold(strategy))  # noqa: E731
        many = timed_many if evaluate_many is not None else None
        if distributed:
            many = split_evaluate(timed, many)

        events = stack.enter_context(open_events(run_dir, cfg.log.tensorboard and is_main_rank()))
        progress = stack.enter_context(SearchProgress(cfg.search.progress and is_main_rank(), events))

        def record(arch: Arch, metrics: dict[str, float]) -> None:
            step = getattr(strategy, "generation", None)
            for journal in journals:
                row = metrics
                if journal.path == shared_cache and race is not None:
                    if metrics.get("images") != race[1]:
                        continue  # a raced score is this search's, not the checkpoint's
                    row = {k: v for k, v in metrics.items() if k != "images"}
                journal.record(key, arch, row, step if isinstance(step, int) else None)
            progress.update(metrics, step)

        result = run_search(strategy, timed, record if is_main_rank() else None, cache, many)
    applied = getattr(strategy, "problem", problem)  # nsga2 adds its acc_min constraint
    require_feasible(applied, result.best_metrics, len(result.history), f" (evaluations kept in {journal_path})")
    out = {
        **result.to_dict(),
        "strategy": cfg.search.strategy,
        "problem": applied.describe(),
        **scores.source,
        "seconds": time.time() - start,
        "eval_seconds": spent["evaluate"],
        "evaluations": len({row["arch"] for row in result.history}),
    }
    if STRATEGIES.get(cfg.search.strategy).applies_min_acc:  # the accuracy bar it applied itself
        out["acc_min"] = strategy.config.acc_min  # type: ignore[attr-defined]
    if is_main_rank():
        atomic_write_text(run_dir / RESULT, json.dumps(out, indent=1))
        plot_pareto(result, run_dir / "pareto.png")
        plot_progress({cfg.search.strategy: result}, run_dir / "progress.png")
    return out


def _check_journal(
    cfg: Config, space: SearchSpace, run_dir: Path, resume: bool, key: str, evaluation: dict | None
) -> dict[str, Any]:
    """The search's identity (scores under `key` from `evaluation`, `cfg`'s problem and strategy), after refusing
    (nothing written) a run directory whose journal belongs to a search we must not touch: any without
    `resume`, one of another search with it. Called before any scoring, so a refused command costs nothing."""
    from supernet.search.journal import check_resumable, search_identity

    problem, journal = search_problem(cfg), run_dir / JOURNAL
    constraints = " and ".join(c.describe() for c in problem.constraints) or "none"
    identity = search_identity(key, space, constraints, evaluation, cfg.search.strategy)
    if journal.exists() and not resume:
        raise ConfigError(
            f"{journal.parent} already holds a search journal; pass --resume to continue it "
            f"or choose another --run-dir (nothing was overwritten)"
        )
    if journal.exists():
        check_resumable(journal, identity, key)
    return identity
