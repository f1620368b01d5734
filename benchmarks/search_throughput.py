"""Candidates/s of scoring one arch at a time vs on the archs' prefix tree (issue 30).

Two workloads on a `nas-bench-macro` supernet (cifar10 preset: 32x32, width 1 unless --width):
  generation  an evolution generation (SPOS defaults: population 50): the second `ask()` of the strategy,
              after a first generation told random scores, so its children share prefixes with parents
  rank        `--rank-archs` random archs of the space, as `supernet rank` scores them
Each is scored by `SupernetEvaluator.evaluate` per arch and by `SupernetEvaluator.evaluate_many`, in
interleaved repeats (the order alternates); the scores must be identical (they are printed as checked).
The supernet is untrained and the images random: BN recalibration and the forward passes cost the
same as with trained weights and real images, which is all this measures.

With `--supernet RUN` (a trained supernet run, its own data and `eval` settings, `--set` overrides): the first
generation is scored for real, and the second is also scored with racing (`search.racing`) against the
strategy's top-k after the first; the line `same top-k` says whether racing kept the top-k (and its order) of
both generations together, as it must.

    PYTHONPATH=src python benchmarks/search_throughput.py [--repeats 2] [--threads 1] [--smoke]
    PYTHONPATH=src python benchmarks/search_throughput.py --supernet RUN [--set eval.val_limit=1000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from supernet.cost import CostTable
from supernet.jobs.search import racing_threshold
from supernet.model.supernet import Supernet
from supernet.search import Objective, Problem, create_strategy
from supernet.search.supernet_evaluator import SupernetEvaluator
from supernet.space import Arch, create_space

SMOKE = {"preset": "fashion-mnist", "width": None, "population": 6, "rank_archs": 6, "recal": (1, 16), "val": 32}


def evolution_generation(space, population: int, seed: int = 0, scorer=None) -> tuple[list[Arch], object]:
    """The second generation of an evolution search (SPOS defaults otherwise) after random scores, or after
    `scorer`'s scores (`evaluate_many`) of the first; and the strategy, told the first."""
    table = CostTable.build(space, "skip")
    strategy = create_strategy(
        "evolution",
        space,
        Problem(objectives=(Objective("accuracy", True),)),
        lambda a: table.query(a).to_dict(),
        random.Random(seed),
        population=population,
    )
    rng = random.Random(seed + 1)
    first = strategy.ask()
    scores = scorer(first) if scorer is not None else [rng.random() for _ in first]
    strategy.tell([(a, {"accuracy": s}) for a, s in zip(first, scores)])
    return strategy.ask(), strategy


def timed(fn: Callable[[], list[float]]) -> tuple[float, list[float]]:
    start = time.perf_counter()
    scores = fn()
    return time.perf_counter() - start, scores


def compare(label: str, evaluator: SupernetEvaluator, archs: list[Arch], repeats: int, strategy: object = None) -> None:
    """Time the scorings of `archs` in interleaved repeats; with `strategy` (told a first generation) also
    racing against its top-k, whose top-k of both generations must be the full scores'."""
    runs = {
        "one at a time": lambda: [evaluator.evaluate(a) for a in archs],
        "prefix tree": lambda: evaluator.evaluate_many(archs),
    }
    threshold = racing_threshold(strategy) if strategy is not None else None
    if threshold is not None:
        runs["racing"] = lambda: [score for score, _ in evaluator.race_many(archs, threshold)]
    times: dict[str, list[float]] = {k: [] for k in runs}
    scores: dict[str, list[float]] = {}
    for r in range(repeats):
        order = list(runs) if r % 2 == 0 else list(runs)[::-1]
        for name in order:
            seconds, scores[name] = timed(runs[name])
            times[name].append(seconds)
    same = scores["one at a time"] == scores["prefix tree"]
    base = statistics.median(times["one at a time"])
    print(f"\n{label}: {len(archs)} archs ({len(set(archs))} distinct); identical scores: {same}")
    print(f"{'scoring':<14} {'s':>8} {'archs/s':>9} {'speed-up':>9}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<14} {med:8.2f} {len(archs) / med:9.2f} {base / med:8.2f}x")
    if not same:
        raise SystemExit(f"{label}: prefix-tree scores differ from one-at-a-time scores")
    if "racing" in scores:
        told = [(m["accuracy"], a.to_string()) for a, m in strategy.board.top(len(strategy.board))]
        k = strategy.k
        full = sorted(told + list(zip(scores["prefix tree"], (a.to_string() for a in archs))), reverse=True)[:k]
        raced = sorted(told + list(zip(scores["racing"], (a.to_string() for a in archs))), reverse=True)[:k]
        print(f"racing threshold {threshold:.4f} (top-{k} of the first generation); same top-{k}: {full == raced}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--population", type=int, default=50)
    p.add_argument("--rank-archs", type=int, default=100)
    p.add_argument("--recal-batches", type=int, default=2, help="recalibration batches of --recal-batch images")
    p.add_argument("--recal-batch", type=int, default=128)
    p.add_argument("--val-images", type=int, default=300, help="validation images, in batches of 100")
    p.add_argument("--smoke", action="store_true", help="tiny sizes (seconds): does it still run?")
    p.add_argument("--supernet", help="a trained supernet run: its weights, data and eval settings")
    p.add_argument("--set", action="append", default=[], help="config override with --supernet (section.field=v)")
    args = p.parse_args()
    if args.supernet:
        trained(args)
        return
    preset, options = "cifar10", {"width": args.width}
    recal, val = (args.recal_batches, args.recal_batch), args.val_images
    if args.smoke:
        preset, options = SMOKE["preset"], {}
        args.population, args.rank_archs, args.repeats = SMOKE["population"], SMOKE["rank_archs"], 1
        recal, val = SMOKE["recal"], SMOKE["val"]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    space = create_space("nas-bench-macro", preset=preset, **options)
    g = torch.Generator().manual_seed(0)
    recal_batches = [torch.randn(recal[1], *space.input_shape, generator=g) for _ in range(recal[0])]
    sizes = [min(100, val - i) for i in range(0, val, 100)]
    val_batches = [
        (torch.randn(n, *space.input_shape, generator=g), torch.randint(0, space.num_classes, (n,), generator=g))
        for n in sizes
    ]
    evaluator = SupernetEvaluator(Supernet(space), recal_batches, val_batches)
    print(
        f"nas-bench-macro ({preset}, {options or 'preset width'}): input {space.input_shape}; "
        f"{recal[0]} x {recal[1]} recalibration images, {val} validation images; {args.threads} thread(s), "
        f"median of {args.repeats} interleaved repeats"
    )
    compare(
        f"evolution generation (population {args.population})",
        evaluator,
        evolution_generation(space, args.population)[0],
        args.repeats,
    )
    rng = random.Random(0)
    compare("rank", evaluator, [space.sample(rng) for _ in range(args.rank_archs)], args.repeats)
    if args.smoke:  # the trained-supernet mode too, on a supernet trained here for two steps
        import tempfile

        from _smoke import smoke_macro_supernet

        with tempfile.TemporaryDirectory(prefix="throughput-smoke-") as scratch:
            args.supernet = str(smoke_macro_supernet(Path(scratch) / "supernet"))
            args.population = 12  # a first generation of at least top-k (10) archs: a racing threshold
            trained(args)


def trained(args: argparse.Namespace) -> None:
    """The generation workload on a trained supernet with its real images, racing included."""
    from supernet.runs.build import build_evaluator, load_data
    from supernet.runs.load import default_config, load_supernet

    torch.set_num_threads(args.threads)
    cfg = default_config(args.supernet, None, args.set)
    net, _ = load_supernet(args.supernet)
    evaluator = build_evaluator(cfg, net, load_data(cfg))
    recal = sum(len(x) for x in evaluator.recal_batches)
    print(
        f"{args.supernet}: {net.space.name}, {recal} recalibration and {evaluator.val_images} validation images; "
        f"{args.threads} thread(s), median of {args.repeats} interleaved repeats"
    )
    archs, strategy = evolution_generation(net.space, args.population, scorer=evaluator.evaluate_many)
    compare(f"evolution generation (population {args.population})", evaluator, archs, args.repeats, strategy)


if __name__ == "__main__":
    main()
