"""Share of a candidate's evaluation time spent outside the forward passes (target < 10%).

Evaluating one arch = BN recalibration forwards + validation forwards + bookkeeping (resetting
BN statistics, argmax, Python). We time `SupernetEvaluator.evaluate` and, on the same batches,
the bare forward passes, and report the difference as the overhead share.

    PYTHONPATH=src python benchmarks/eval_overhead.py [--smoke]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import torch

from supernet.config.schema import load_config
from supernet.model.supernet import Supernet
from supernet.runs.build import build_evaluator, build_space, load_data

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["data.train_limit=200", "data.val_size=64", "eval.recal_batches=1", "eval.recal_batch_size=32"]


def main(archs: int = 20, smoke: bool = False) -> None:
    torch.set_num_threads(1)
    overrides = ["data.train_limit=6000", "data.val_size=2000", *(SMOKE if smoke else [])]
    cfg = load_config(ROOT / "configs" / "fashion-mnist-demo.yaml", overrides)
    splits = load_data(cfg)
    space = build_space(cfg, splits)
    net = Supernet(space)
    evaluator = build_evaluator(cfg, net, splits)
    rng = random.Random(0)
    sample = [space.sample(rng) for _ in range(archs)]
    totals, forwards = [], []
    for arch in sample:
        start = time.perf_counter()
        evaluator.evaluate(arch)
        totals.append(time.perf_counter() - start)
        start = time.perf_counter()
        with torch.no_grad():
            net.train()
            for x in evaluator.recal_batches:
                net(x, arch)
            net.eval()
            for x, _ in evaluator.val_batches:
                net(x, arch)
        forwards.append(time.perf_counter() - start)
    total, forward = statistics.median(totals), statistics.median(forwards)
    print(
        f"{len(evaluator.recal_batches)} recalibration batches of {cfg.eval.recal_batch_size}, "
        f"{sum(len(y) for _, y in evaluator.val_batches)} validation images"
    )
    print(
        f"evaluate(): median {total * 1e3:.1f} ms; bare forward passes {forward * 1e3:.1f} ms; "
        f"outside forwards {max(0.0, total - forward) / total:.1%}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds): does it still run?")
    if parser.parse_args().smoke:
        main(archs=2, smoke=True)
    else:
        main()
