"""Our cost model against NAS-Bench-Macro's published params/flops, for every arch in the file.

The `nas-bench-macro` space with the cifar10 preset (32x32, 10 classes, full width) should reproduce
each arch's `flops` (MACs of convolutions and linear layers) and `params` (BatchNorm included)
exactly. Prints the number of archs checked, the mismatches (at most 20) and the ceiling/zero-cost
reference over all archs.

    PYTHONPATH=src python benchmarks/macro_cost_check.py [--benchmark-file PATH] [--smoke]

`--smoke` checks the first 50 archs (a synthetic file when the published one is not installed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _smoke import benchmark_file  # noqa: E402

from supernet.analysis.benchmark import cost_mismatches, load_benchmark, reference
from supernet.space import create_space

BENCH_FILE = str(
    Path(__file__).resolve().parents[2] / "shared" / "data" / "nas-bench-macro" / "nas-bench-macro_cifar10.json"
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmark-file", default=BENCH_FILE)
    p.add_argument("--smoke", action="store_true", help="the first 50 archs only (seconds)")
    p.add_argument("--out", default="runs/macro-cost-check", help="where --smoke writes its synthetic file")
    args = p.parse_args()
    space = create_space("nas-bench-macro", preset="cifar10")
    start = time.time()
    path = benchmark_file(args.benchmark_file, args.smoke, Path(args.out))
    bench = load_benchmark("nas-bench-macro", path, space)
    checked = list(bench.entries)[:50] if args.smoke else list(bench.entries)
    bad = cost_mismatches(bench, space, checked)
    print(f"{len(checked)} archs checked in {time.time() - start:.1f}s: {len(bad)} mismatches")
    for row in bad[:20]:
        print(
            f"  {row['arch']}: macs {row['macs']} vs flops {row['flops']}, params {row['params']} vs "
            f"{row['file_params']}"
        )
    ref = reference(bench, list(bench.entries))
    print(
        "all archs: ceiling (run vs run Kendall tau) "
        + ", ".join(f"{k} {v:.3f}" for k, v in ref["ceiling_kendall"].items())
    )
    bars = ", ".join(f"{k}-only {v:.3f}" for k, v in ref["zero_cost_kendall"].items())
    print("all archs: zero-cost Kendall tau " + bars)


if __name__ == "__main__":
    main()
