"""Cost-table benchmark: build time for full-size scarlet-s1 and the time of one query.

Run: PYTHONPATH=src python benchmarks/cost_query.py [--smoke]
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from supernet.cost import CostTable, count_macs, count_params, format_quantity
from supernet.model.export import standalone_config
from supernet.model.standalone import StandaloneNet
from supernet.space import create_space


def main(n_queries: int = 100_000, n_archs: int = 1000, preset: str | None = None) -> None:
    space = create_space("scarlet-s1", preset=preset)  # default: 224x224, 1000 classes
    for identity in ("skip", "els"):
        start = time.perf_counter()
        table = CostTable.build(space, identity)
        build_s = time.perf_counter() - start
        lo, hi = table.macs_range()
        print(
            f"[{identity}] table build: {build_s:.2f} s  ({space.num_layers} layers, "
            f"{sum(map(len, table.choices))} candidates); MACs range {format_quantity(lo)}..{format_quantity(hi)}"
        )

    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(n_archs)]
    reps = n_queries // n_archs
    query = table.query
    start = time.perf_counter()
    for _ in range(reps):
        for arch in archs:
            query(arch)
    per_query = (time.perf_counter() - start) / (reps * n_archs)
    print(f"query (plain Python dict sums): {per_query * 1e6:.2f} us mean over {reps * n_archs} queries")

    # Alternative for comparison: numpy fancy indexing over the dense [layer, choice] arrays.
    dense = {m: table.layer_costs(m) for m in ("macs", "params")}
    rows = np.arange(space.num_layers)
    index = [{op: i for i, op in enumerate(c)} for c in table.choices]
    start = time.perf_counter()
    for _ in range(reps // 10):
        for arch in archs:
            cols = [d[op] for d, op in zip(index, arch.ops)]
            int(dense["macs"][rows, cols].sum()), int(dense["params"][rows, cols].sum())
    print(
        f"query (numpy fancy indexing, for comparison): "
        f"{(time.perf_counter() - start) / (reps // 10 * n_archs) * 1e6:.2f} us"
    )

    n = space.num_layers
    named = {"all e3k3": ",".join(["e3k3"] * n), "all e6k7": ",".join(["e6k7"] * n)}
    named.update({f"random {i}": archs[i].to_string() for i in range(2)})
    for name, text in named.items():
        arch = space.parse_arch(text)
        cost = table.query(arch)
        model = StandaloneNet(standalone_config(space, arch, table.identity))
        check = (count_macs(model, space.input_shape), count_params(model)) == (cost.macs, cost.params)
        print(
            f"{name:>9}: MACs {format_quantity(cost.macs):>7} ({cost.macs}), "
            f"params {format_quantity(cost.params):>6} ({cost.params}); matches counting the exported model: {check}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds): does it still run?")
    if parser.parse_args().smoke:
        main(n_queries=200, n_archs=20, preset="fashion-mnist")
    else:
        main()
