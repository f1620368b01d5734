"""NAS-Bench-201 (Dong & Yang, ICLR 2020): one 4-node cell of 6 edges, 5 ops per edge (5^6 = 15625).

Edges in the benchmark's order (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2); node j is the sum
of its incoming edges' ops; ops `none` (zero), `skip_connect`, `nor_conv_1x1`, `nor_conv_3x3`
(ReLU-Conv-BN), `avg_pool_3x3`. Network: 3x3 conv 16 + BN; three stages of `cells_per_stage`
cells at 16, 32, 64 channels (times `width`), joined by ResNet basic reduction blocks (ReLU-Conv3x3
s2-BN, ReLU-Conv3x3-BN, shortcut 2x2 avg-pool + 1x1 conv); BN, ReLU, global pool, linear.

`subspace` restricts every edge's ops: `full`, `no-zero` (4^6) and `only-conv` (2^6) from the
inter-choice paper (section 3.1.1); `reduce-1` (no 1x1 conv), `reduce-2` (no avg-pool) and
`reduce-3` (neither) from SPOS Table 8. Archs read and print in the benchmark's string form
`|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|`
(`space.parse_arch`, `space.format_arch`), besides op names and indices.
"""

from __future__ import annotations

from typing import Any

from supernet.core.errors import SpaceError
from supernet.space.arch import Arch
from supernet.space.registry import register_space
from supernet.space.space import LayerSpec, SearchSpace, _short, register_arch_format
from supernet.space.zoo.common import check_backbone, options_of

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")  # the benchmark's order
NB201_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))  # (src, dst)
SUBSPACES = {
    "full": NB201_OPS,
    "no-zero": ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"),
    "only-conv": ("nor_conv_1x1", "nor_conv_3x3"),
    "reduce-1": ("none", "skip_connect", "nor_conv_3x3", "avg_pool_3x3"),
    "reduce-2": ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3"),
    "reduce-3": ("none", "skip_connect", "nor_conv_3x3"),
}

PRESETS: dict[str, dict[str, Any]] = {
    "cifar10": {"width": 1.0, "resolution": 32, "input_channels": 3, "num_classes": 10, "cells_per_stage": 5},
    "fashion-mnist": {"width": 0.5, "resolution": 28, "input_channels": 1, "num_classes": 10, "cells_per_stage": 1},
}


def _cell_edges(space: SearchSpace) -> list[tuple[int, int]]:
    cell = next(b for b in space.body if b["type"] == "cell")
    return [(int(s), int(d)) for s, d in cell["edges"]]


def parse_cell_string(text: str, space: SearchSpace) -> list[str] | None:
    """`|op~src|+|op~src|op~src|+...`: one `+`-separated group per node 1, 2, ...; None if `text`
    has no `~` (another notation)."""
    if "~" not in text:
        return None
    index = {edge: i for i, edge in enumerate(_cell_edges(space))}
    ops: list[str | None] = [None] * len(index)
    for dst, group in enumerate(text.strip().split("+"), start=1):
        group = group.strip()
        if len(group) < 2 or group[0] != "|" or group[-1] != "|":
            raise SpaceError(f"arch '{_short(text)}': node {dst} must look like |op~input|...|")
        for item in group[1:-1].split("|"):
            op, sep, src = item.strip().partition("~")
            i = index.get((int(src), dst)) if sep and src.isdigit() else None
            if i is None or ops[i] is not None:
                raise SpaceError(f"arch '{_short(text)}': '{_short(item)}' is not a (new) edge into node {dst}")
            ops[i] = op
    missing = [f"{d}<-{s}" for (s, d), i in index.items() if ops[i] is None]
    if missing:
        raise SpaceError(f"arch '{_short(text)}' lacks edges {', '.join(missing)}")
    return ops  # type: ignore[return-value]


def format_cell_string(arch: Arch, space: SearchSpace) -> str:
    edges = _cell_edges(space)
    nodes = sorted({d for _, d in edges})
    return "+".join(
        "|" + "".join(f"{arch[i]}~{s}|" for i, (s, d) in sorted(enumerate(edges), key=lambda e: e[1]) if d == node)
        for node in nodes
    )


register_arch_format("nb201", parse_cell_string, format_cell_string)


def cell_space_checks(width: float, resolution: int, input_channels: int, num_classes: int, repeats: int) -> None:
    check_backbone(width, resolution, input_channels, num_classes, 1)
    if resolution % 4:
        raise SpaceError(f"resolution must be a multiple of 4 (two 2x reductions), got {resolution}")
    if repeats < 1:
        raise SpaceError(f"need at least one cell per stage, got {repeats}")


@register_space(
    "nas-bench-201",
    "NAS-Bench-201: a 4-node cell, 6 edges of none / skip / conv1x1 / conv3x3 / "
    "avg-pool (5^6); `subspace` no-zero, only-conv, reduce-1/2/3",
    PRESETS,
)
def nas_bench_201(
    width: float = 1.0,
    resolution: int = 32,
    input_channels: int = 3,
    num_classes: int = 10,
    cells_per_stage: int = 5,
    subspace: str = "full",
) -> SearchSpace:
    cell_space_checks(width, resolution, input_channels, num_classes, cells_per_stage)
    if subspace not in SUBSPACES:
        raise SpaceError(f"unknown nas-bench-201 subspace {subspace!r}; known: {', '.join(SUBSPACES)}")
    options = options_of(
        width=width,
        resolution=resolution,
        input_channels=input_channels,
        num_classes=num_classes,
        cells_per_stage=cells_per_stage,
        subspace=subspace,
    )
    c = max(1, round(16 * width))
    stem = ({"type": "conv", "in": input_channels, "out": c, "kernel": 3, "act": None},)
    body: list[dict[str, Any]] = []
    for stage, ch in enumerate((c, 2 * c, 4 * c)):
        if stage:
            body.append({"type": "nb201_resblock", "in": ch // 2, "out": ch, "stride": 2})
        body += [
            {"type": "cell", "channels": ch, "edges": [list(e) for e in NB201_EDGES]} for _ in range(cells_per_stage)
        ]
    head = (
        {"type": "bn_act", "channels": 4 * c, "act": "relu"},
        {"type": "pool"},
        {"type": "linear", "in": 4 * c, "out": num_classes},
    )
    layers = tuple(LayerSpec(c, c, 1, SUBSPACES[subspace], "relu") for _ in NB201_EDGES)
    return SearchSpace(
        "nas-bench-201",
        (input_channels, resolution, resolution),
        num_classes,
        stem,
        layers,
        head,
        options,
        topology="cells",
        body=tuple(body),
        arch_format="nb201",
    )
