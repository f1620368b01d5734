"""Cost tables of non-chain spaces (cells), by counting whole stand-alone models.

In a cell space an arch's cost is additive over its layers (edges): each edge op runs on a
fixed input shape wherever it sits, whatever the other edges hold. So, with a base arch
(every edge at its first choice; `none` in NAS-Bench-201), the entry of (edge i, op) is
count(base with edge i = op) - count(base), and the fixed part count(base). Each edge's
entries are then shifted so that its cheapest op costs 0 (the fixed part takes the shift),
which leaves every query unchanged. One extra model (every edge at its last choice) checks the
additivity: a space where it fails gets an error, not a wrong table.
"""

from __future__ import annotations

from typing import Any

from supernet.core.errors import SpaceError
from supernet.cost.counter import count_all
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace

METRICS = ("macs", "params")


def _count(space: SearchSpace, ops: tuple[str, ...], identity: str) -> dict[str, int]:
    from supernet.model.standalone import StandaloneNet
    from supernet.ops.standalone import standalone_config

    model = StandaloneNet(standalone_config(space, Arch(ops), identity))
    macs, params, _ = count_all(model, tuple(space.input_shape))
    return {"macs": macs, "params": params}


def additive_cost_rows(space: SearchSpace, identity: str) -> tuple[dict[str, int], dict[str, list[list[int]]]]:
    """(fixed, {metric: [per layer, per choice]}) for `CostTable`, counted on whole exported models."""
    base = tuple(layer.choices[0] for layer in space.layers)
    base_cost = _count(space, base, identity)
    rows: dict[str, list[list[int]]] = {m: [] for m in METRICS}
    fixed = dict(base_cost)
    for i, layer in enumerate(space.layers):
        costs = [
            base_cost if op == base[i] else _count(space, base[:i] + (op,) + base[i + 1 :], identity)
            for op in layer.choices
        ]
        for m in METRICS:
            row = [c[m] - base_cost[m] for c in costs]
            low = min(row)
            rows[m].append([v - low for v in row])
            fixed[m] += low
    last = tuple(layer.choices[-1] for layer in space.layers)
    check = _count(space, last, identity)
    for m in METRICS:
        predicted = fixed[m] + sum(r[-1] for r in rows[m])
        if predicted != check[m]:
            raise SpaceError(
                f"space '{space.name}': {m} is not additive over its layers "
                f"({predicted} predicted, {check[m]} counted for {','.join(last)})"
            )
    return fixed, rows


def build_additive_table(cls: Any, space: SearchSpace, identity: str):
    """A `CostTable` (class `cls`) for a non-chain space."""
    fixed, rows = additive_cost_rows(space, identity)
    return cls(
        [layer.choices for layer in space.layers],
        fixed,
        rows,
        space=space.name,
        fingerprint=space.fingerprint(),
        identity=identity,
    )
