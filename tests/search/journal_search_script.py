"""A small journaled search, run as a subprocess by the SIGKILL test.

usage: python journal_search_script.py JOURNAL OUT_JSON SLEEP_SECONDS
Prints the number of real evaluations; writes the SearchResult dict to OUT_JSON at the end.
"""

from __future__ import annotations

import json
import random
import sys
import time
import zlib

from supernet.search import SCARLET_OBJECTIVES, Constraint, Journal, Problem, create_strategy, run_journaled
from supernet.space import LayerSpec, SearchSpace

KEY = "ckpt-digest:settings-hash"
PROBLEM = Problem(SCARLET_OBJECTIVES, (Constraint("macs", max=40e6),))
OP_MACS = {"e3k3": 3, "e3k5": 4, "e3k7": 5, "e6k3": 6, "e6k5": 8, "e6k7": 10, "id": 0}


def space():
    """Seven layers of the scarlet-s1 ops, built directly (create_space would import torch)."""
    layer = LayerSpec(16, 16, 1, tuple(OP_MACS))
    return SearchSpace("toy", (1, 28, 28), 10, (), (layer,) * 7, ())


def costs(arch):
    macs = sum(OP_MACS[op] for op in arch)
    return {"macs": macs * 1e6, "params": macs * 1e5 + 7 * len(set(arch.ops))}


def accuracy(arch):
    return {"accuracy": zlib.crc32(arch.to_string().encode()) % 10_000 / 10_000}


def strategy(sp):
    return create_strategy("nsga2", sp, PROBLEM, costs, random.Random(11), population=10, generations=15, acc_min=0.2)


def main(journal_path: str, out_path: str, sleep: float) -> None:
    sp = space()
    calls = []

    def evaluate(arch):
        calls.append(arch)
        time.sleep(sleep)
        return accuracy(arch)

    with Journal(journal_path) as journal:
        result = run_journaled(strategy(sp), evaluate, journal, KEY, sp)
    with open(out_path, "w") as f:
        json.dump(result.to_dict(), f)
    print(len(calls))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
