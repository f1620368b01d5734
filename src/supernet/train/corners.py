"""The sandwich rule's corners: the largest and the smallest path of a space.

BigNAS and once-for-all take the maximum (minimum) in every dimension: depth (no identity), width,
expansion, kernel and, in quantized spaces, bit widths. A candidate is described by those dimensions of
its block config; one candidate is at least as large as another when it is in every dimension, and the
largest of a layer is the one no other candidate exceeds. Where several are left that do not compare (a
7x7 kernel at expansion 3 against a 5x5 at expansion 6, an Xception block against a 7x7 one) the cost
breaks the tie: BitOps in quantized spaces, else MACs (ties: the earlier choice).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from supernet.ops.candidates import candidate_config
from supernet.space.arch import Arch
from supernet.space.opnames import IDENTITY
from supernet.space.space import LayerSpec, SearchSpace

SIZE_KEYS = ("expansion", "mid", "kernel", "wbits", "abits", "se", "xception")
"""Block-config fields that grow a candidate: widths (`expansion`, the bottleneck width `mid`), kernel,
bit widths, squeeze-and-excitation, Xception's extra depth."""
PASS_THROUGH = frozenset({"identity", "els", "zero", "avgpool"})
"""Block types without a learned transformation of their own (ELS stands in for an identity)."""

Size = tuple[int, dict[str, float]]
"""(depth 0/1, the candidate's size fields): depth 0 is an identity or a parameter-free op."""


def candidate_size(op: str, layer: LayerSpec, identity: str) -> Size:
    config = candidate_config(op, layer, identity)
    if op == IDENTITY or config.get("type") in PASS_THROUGH:
        return 0, {}
    return 1, {k: float(config[k]) for k in SIZE_KEYS if k in config}


def at_least(a: Size, b: Size) -> bool:
    """Whether `a` is at least as large as `b` in every dimension (blocks of different kinds do not compare)."""
    if b[0] == 0:
        return True
    return a[0] == 1 and a[1].keys() == b[1].keys() and all(a[1][k] >= b[1][k] for k in b[1])


def _extreme(sizes: Sequence[Size], costs: Sequence[float], larger: bool) -> int:
    """The index of the largest (smallest) candidate: undominated in every dimension, then by cost."""
    n = len(sizes)
    exceeds = (lambda i, j: at_least(sizes[i], sizes[j])) if larger else (lambda i, j: at_least(sizes[j], sizes[i]))
    strictly = lambda i, j: exceeds(i, j) and not exceeds(j, i)  # noqa: E731
    left = [i for i in range(n) if not any(strictly(j, i) for j in range(n))]
    pick: Callable[..., int] = max if larger else min
    return pick(left, key=lambda i: costs[i])


def sandwich_corners(space: SearchSpace, identity: str, costs: Sequence[Sequence[float]]) -> tuple[Arch, Arch]:
    """(largest, smallest) path of `space`; `costs[layer][choice]` breaks ties between incomparable ones."""
    largest, smallest = [], []
    for layer, row in zip(space.layers, costs, strict=True):
        sizes = [candidate_size(op, layer, identity) for op in layer.choices]
        largest.append(layer.choices[_extreme(sizes, row, True)])
        smallest.append(layer.choices[_extreme(sizes, row, False)])
    return Arch(tuple(largest)), Arch(tuple(smallest))
