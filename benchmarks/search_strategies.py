"""Compare random, evolution (SPOS), nsga2 (SCARLET) and ces (PAD-NAS) at the same evaluation budget.

The table is made from a supernet trained here: a small scarlet-s1 supernet on Fashion-MNIST,
every arch of a 3-ops-per-layer sub-space scored by the supernet (BN recalibration + validation
accuracy) and written to CSV. The strategies then search that sub-space through the table, over
several seeds, and we print best-found accuracy after 25/50/100/200 evaluations.

    PYTHONPATH=src python benchmarks/search_strategies.py [--out runs/bench-strategies] [--seeds 5] [--smoke]

Resumable: the supernet checkpoint and the table are reused when present.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import random
import statistics
from pathlib import Path

from supernet.config.schema import load_config
from supernet.cost import CostTable
from supernet.jobs.train import train_supernet
from supernet.runs.build import build_evaluator, load_data
from supernet.runs.load import load_supernet
from supernet.search import SCARLET_OBJECTIVES, Objective, Problem, create_strategy, run_search
from supernet.search.evaluator import TableEvaluator

KEEP = ("e3k3", "e6k5", "id")  # 3 ops per layer (identity where the layer has one)
BUDGETS = (25, 50, 100, 200)
OVERRIDES = [
    "data.train_limit=20000",
    "data.val_size=2000",
    "train.epochs=3",
    "train.progress=false",
    "space.options={stem_stride: 2, layers_per_stage: [1,2,1,2,1,1]}",
    "supernet.identity=els",
    "eval.recal_batches=4",
    "eval.val_limit=1000",
    "eval.val_batch_size=1000",
]
# --smoke: a seconds-long supernet, 2 ops per layer of 6 layers, small searches
SMOKE = {
    "keep": ("e3k3", "id"),
    "budgets": (5, 10),
    "overrides": [
        *OVERRIDES,
        "data.train_limit=300",
        "data.val_size=64",
        "train.epochs=1",
        "space.options={stem_stride: 2, layers_per_stage: [1,1,1,1,1,1], width: 0.25, head_channels: 32}",
        "eval.recal_batches=1",
        "eval.recal_batch_size=32",
        "eval.val_limit=64",
        "eval.val_batch_size=64",
    ],
    "population": 4,
    "iterations": 2,
}


def make_table(out: Path, overrides: list[str], keep: tuple[str, ...]) -> Path:
    cfg = load_config(None, overrides)
    if not (out / "supernet" / "checkpoints" / "last.pt").exists():
        train_supernet(cfg, out / "supernet")
    table = out / "table.csv"
    if table.exists():
        return table
    net, _ = load_supernet(out / "supernet")
    evaluator = build_evaluator(cfg, net, load_data(cfg))
    space = sub_space(net.space, keep)
    archs = [space.from_indices(i) for i in itertools.product(*[range(len(layer.choices)) for layer in space.layers])]
    rows = [(a.to_string(), score) for a, score in zip(archs, evaluator.evaluate_many(archs))]  # prefix tree
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", "accuracy"])
        writer.writerows(rows)
    return table


def sub_space(space, keep: tuple[str, ...] = KEEP):
    return space.restrict([[op for op in keep if op in layer.choices] for layer in space.layers])


def best_after(history: list[dict], budget: int) -> float:
    seen, best = set(), 0.0
    for row in history:
        if row["arch"] not in seen:
            seen.add(row["arch"])
            if len(seen) > budget:
                break
            best = max(best, row["metrics"]["accuracy"])
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/bench-strategies")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds): does it still run?")
    args = parser.parse_args()
    smoke = SMOKE if args.smoke else {}
    keep, budgets = smoke.get("keep", KEEP), smoke.get("budgets", BUDGETS)
    population, iterations = smoke.get("population", 20), smoke.get("iterations", 10)
    seeds = 1 if args.smoke else args.seeds
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table_path = make_table(out, smoke.get("overrides", OVERRIDES), keep)
    net, _ = load_supernet(out / "supernet")
    space = sub_space(net.space, keep)
    table = TableEvaluator(table_path, space)
    costs_table = CostTable.build(space, net.options.identity)
    costs = lambda a: costs_table.query(a).to_dict()  # noqa: E731
    best_possible = max(
        table.evaluate(space.from_indices(i)) for i in itertools.product(*[range(len(l.choices)) for l in space.layers])
    )
    settings = {
        "random": ({"num_samples": population * iterations, "topk": 10}, (Objective("accuracy", True),)),
        "evolution": ({"population": population, "iterations": iterations}, (Objective("accuracy", True),)),
        "nsga2": ({"population": population, "generations": iterations, "acc_min": None}, SCARLET_OBJECTIVES),
        "ces": (
            {"population": population, "iterations": iterations},
            (Objective("accuracy", True), Objective("macs", False)),
        ),
    }
    print(f"sub-space of {space.size} archs; best accuracy in the table {best_possible:.4f}")
    print(f"{'strategy':<10}" + "".join(f"{'@' + str(b):>16}" for b in budgets))
    for name, (options, objectives) in settings.items():
        curves = {b: [] for b in budgets}
        for seed in range(seeds):
            strategy = create_strategy(
                name, space, Problem(objectives=objectives), costs, random.Random(seed), **options
            )
            result = run_search(strategy, lambda a: {"accuracy": table.evaluate(a)})
            for b in budgets:
                curves[b].append(best_after(result.history, b))
        print(
            f"{name:<10}" + "".join(f"{statistics.mean(v):>9.4f}±{statistics.pstdev(v):.4f}" for v in curves.values())
        )


if __name__ == "__main__":
    main()
