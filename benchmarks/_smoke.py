"""Helpers for the benchmarks' `--smoke` modes (tiny sizes, seconds; `tests/core/test_benchmarks_smoke.py`).

Not a benchmark itself (the leading underscore keeps it out of the smoke test's list of scripts).
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def synthetic_macro_benchmark(path: Path, seed: int = 0) -> Path:
    """A NAS-Bench-Macro file of every arch of the space (as the published one), flops/params from our cost
    model, accuracies random: the published file's format for smoke runs where it is not installed. Its
    numbers mean nothing."""
    from supernet.analysis.benchmark import digits
    from supernet.cost import CostTable
    from supernet.space import create_space

    space = create_space("nas-bench-macro", preset="cifar10")
    table = CostTable.build(space, "skip")
    rng = random.Random(seed)
    entries = {}
    for indices in itertools.product(*(range(len(layer.choices)) for layer in space.layers)):
        arch = space.from_indices(indices)
        cost = table.query(arch)
        runs = [round(rng.uniform(80, 95), 2) for _ in range(3)]
        entries[digits(arch, space)] = {
            "test_acc": runs,
            "mean_acc": sum(runs) / 3,
            "std": 0.1,
            "params": int(cost.params),
            "flops": int(cost.macs),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries))
    return path


def benchmark_file(given: str, smoke: bool, out: Path) -> str:
    """`given` when it exists or outside smoke mode; in smoke mode without it, a synthetic file in `out`."""
    if not smoke or Path(given).is_file():
        return given
    print(f"smoke: {given} not found; using a synthetic NAS-Bench-Macro file (its numbers mean nothing)")
    return str(synthetic_macro_benchmark(out / "synthetic-nas-bench-macro.json"))


def smoke_macro_supernet(run_dir: Path) -> Path:
    """A nas-bench-macro supernet (fashion-mnist preset) trained for two steps."""
    from supernet.config.schema import load_config
    from supernet.jobs.train import train_supernet

    if not (run_dir / "checkpoints").is_dir():
        cfg = load_config(
            None,
            [
                "space.name=nas-bench-macro",
                "data.train_limit=100",
                "data.val_size=32",
                "train.epochs=1",
                "train.max_steps_per_epoch=2",
                "train.batch_size=16",
                "train.progress=false",
                "eval.recal_batches=1",
                "eval.recal_batch_size=16",
                "eval.val_batch_size=32",
            ],
        )
        train_supernet(cfg, run_dir)
    return run_dir
