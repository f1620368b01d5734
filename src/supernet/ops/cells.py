"""Cell blocks (NAS-Bench-201, the NAS-Bench-101 chain cell of SCARLET section 6.2) and their op names.

A `cell` block is a small DAG: node 0 is the (optionally projected) input, node j is the sum of
the ops on the edges into it (`edges`: [src, dst] pairs in the space's layer order), the output
is the last node. Every node has the cell's shape. An edge's candidates are `{"name", "block"}`
dicts; `zero` blocks (op `none`) are not built and compute nothing. A supernet cell holds every
candidate per edge (`candidates`) and runs the ones it is given; a stand-alone cell holds one op
per edge (`ops`). Both key their modules `ops.<edge>.<op name>`, so exporting is a weight copy.

Registers block types `cell`, `relu_conv_bn`, `avgpool`, `maxpool`, `bn_act`, `zero`,
`nb201_resblock`, and op names `none`, `skip_connect`, `skip`, `nor_conv_KxK`, `avg_pool_KxK`, `convKxK`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from supernet.ops.blocks import BlockConfig, activation, build_block, register_block, split_copies
from supernet.ops.candidates import candidate_config, register_op
from supernet.space.space import START, LayerSpec


class ReLUConvBN(nn.Sequential):
    """NAS-Bench-201's conv op: ReLU (not in place: a node feeds several edges), conv, BN."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, bn_affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(cout, affine=bn_affine),
        )


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


class ResNetBasicBlock(nn.Module):
    """NAS-Bench-201's reduction block: ReLU-Conv3x3(stride)-BN, ReLU-Conv3x3-BN, plus a shortcut of
    2x2 average pooling and a bias-free 1x1 conv."""

    def __init__(self, cin: int, cout: int, stride: int = 2, bn_affine: bool = True) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, stride, bn_affine)
        self.conv_b = ReLUConvBN(cout, cout, 3, 1, bn_affine)
        self.downsample = (
            nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class Cell(nn.Module):
    """Inter-choice dependent weights (see `supernet.model.interchoice`): a supernet cell may get
    `biases` (an `InputBiases` over the cell's edges, set by `CellSupernet`): the vector selected by
    the path's ops is added to the input of each edge's op. A stand-alone cell built with
    `bias_edges` (config key, absent when off) holds one constant vector per listed edge
    (`edge_bias.<edge>`) added to that edge's input. After `split`, `ops.<edge>.<op>` is a
    ModuleDict of copies keyed by the previous edge's choice (`start` for the first edge)."""

    def __init__(
        self,
        edges: Sequence[Sequence[int]],
        candidates: Sequence[Sequence[BlockConfig]],
        pre: BlockConfig | None = None,
        bn_affine: bool = True,
        channels: int | None = None,
        bias_edges: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if len(edges) != len(candidates):
            raise ValueError(f"cell has {len(edges)} edges but {len(candidates)} op lists")
        self.edges = [(int(s), int(d)) for s, d in edges]
        self.num_nodes = max(d for _, d in self.edges) + 1
        if any(not 0 <= s < d for s, d in self.edges):
            raise ValueError(f"cell edges must go from a lower to a higher node: {self.edges}")
        self.incoming = [[i for i, (_, d) in enumerate(self.edges) if d == j] for j in range(self.num_nodes)]
        self.pre = build_block(pre, bn_affine) if pre else nn.Identity()
        self.ops = nn.ModuleList(
            nn.ModuleDict(
                {c["name"]: build_block(c["block"], bn_affine) for c in cands if c["block"]["type"] != "zero"}
            )
            for cands in candidates
        )
        self.names = [frozenset(c["name"] for c in cands) for cands in candidates]  # zero ops included
        # a stand-alone cell's fixed choice per edge
        self.chosen = tuple(cands[0]["name"] if len(cands) == 1 else None for cands in candidates)
        self.biases: nn.Module | None = None
        if bias_edges:
            if channels is None or any(not 0 <= int(i) < len(self.edges) for i in bias_edges):
                raise ValueError(f"cell bias_edges {list(bias_edges)} need the cell's channels and valid edges")
            self.edge_bias = nn.ParameterDict({str(int(i)): nn.Parameter(torch.zeros(channels)) for i in bias_edges})
        self.split_previous: list[int | None] | None = None  # after `split`: the previous edge of each edge

    def forward(self, x: torch.Tensor, ops: Sequence[str | Sequence[str]] | None = None) -> torch.Tensor:
        """`ops`: per edge, an op name or several (their outputs are summed); default: the fixed ones."""
        ops = self.chosen if ops is None else ops
        if len(ops) != len(self.edges):
            raise ValueError(f"{len(ops)} ops for a cell of {len(self.edges)} edges")
        nodes = [self.pre(x)]
        for j in range(1, self.num_nodes):
            total = None
            for i in self.incoming[j]:
                modules = self._edge(i, ops[i], ops)
                if not modules:
                    continue
                h = nodes[self.edges[i][0]]
                bias = self.input_bias(i, ops)
                if bias is not None:
                    h = h + bias.view(1, -1, 1, 1)
                for module in modules:
                    y = module(h)
                    total = y if total is None else total + y
            nodes.append(torch.zeros_like(nodes[0]) if total is None else total)
        return nodes[-1]

    def input_bias(self, i: int, ops: Sequence[str | Sequence[str]]) -> torch.Tensor | None:
        """The vector added to edge i's input on the path `ops` (None: none)."""
        if self.biases is not None:
            if not all(isinstance(op, str) for op in ops):
                raise ValueError("a cell with inter-choice biases runs one op per edge (no multi-path)")
            return self.biases.vector(i, ops)
        edge_bias = getattr(self, "edge_bias", None)
        if edge_bias is not None and str(i) in edge_bias:
            return edge_bias[str(i)]
        return None

    def _edge(
        self, i: int, names: str | Sequence[str] | None, ops: Sequence[str | Sequence[str]] | None = None
    ) -> list[nn.Module]:
        names = (names,) if isinstance(names, str) or names is None else names
        unknown = [n for n in names if n not in self.names[i]]
        if unknown:
            raise ValueError(f"cell edge {i}: no op {unknown[0]!r}; has {sorted(self.names[i])}")
        modules = [self.ops[i][n] for n in names if n in self.ops[i]]  # zero ops run nothing
        if self.split_previous is not None and modules:
            prev = self.split_previous[i]
            key = START if prev is None else (ops[prev] if ops is not None else None)
            if not isinstance(key, str):
                raise ValueError("a split cell runs one op per edge and needs the whole path to pick a copy")
            modules = [m[key] for m in modules]
        return modules

    def edge_modules(self, ops: Sequence[str | Sequence[str]]) -> list[nn.Module]:
        """The modules the given ops (per edge, a name or several) run, zero ops left out."""
        return [m for i, names in enumerate(ops) for m in self._edge(i, names, ops)]

    def split(self, previous: Sequence[int | None], previous_names: Sequence[Sequence[str]]) -> dict:
        """Copy every edge op once per choice of its previous edge (`previous[i]`, None: `start`,
        whose choices are `previous_names[i]`). Returns {copy's parameter: original parameter}."""
        if self.split_previous is not None:
            return {}
        origin: dict[nn.Parameter, nn.Parameter] = {}
        for i, edge in enumerate(self.ops):
            names = (START,) if previous[i] is None else tuple(previous_names[i])
            self.ops[i] = split_copies(edge, names, origin)
        self.split_previous = list(previous)
        return origin


def _cell(c: BlockConfig, affine: bool) -> nn.Module:
    if "ops" in c:
        candidates = [[op] for op in c["ops"]]
    elif "candidates" in c:
        candidates = c["candidates"]
    else:
        raise ValueError("a cell config needs `ops` (stand-alone) or `candidates` (supernet)")
    return Cell(c["edges"], candidates, c.get("pre"), affine, c.get("channels"), c.get("bias_edges", ()))


register_block("cell", _cell)
register_block("relu_conv_bn", lambda c, a: ReLUConvBN(c["in"], c["out"], c["kernel"], c.get("stride", 1), a))
register_block(
    "avgpool", lambda c, a: nn.AvgPool2d(c["kernel"], c.get("stride", 1), c["kernel"] // 2, count_include_pad=False)
)
register_block("maxpool", lambda c, a: nn.MaxPool2d(c["kernel"], c.get("stride", c["kernel"])))
register_block("bn_act", lambda c, a: nn.Sequential(nn.BatchNorm2d(c["channels"], affine=a), activation(c.get("act"))))
register_block("zero", lambda c, a: Zero())
register_block("nb201_resblock", lambda c, a: ResNetBasicBlock(c["in"], c["out"], c.get("stride", 2), a))


# -- op names -------------------------------------------------------------------------------------
def _same_shape(op: str, layer: LayerSpec) -> None:
    if not layer.keeps_shape:
        raise ValueError(f"cell op {op!r} needs an edge that keeps its shape, got {layer}")


def _skip(m: re.Match[str], layer: LayerSpec, identity: str) -> BlockConfig:
    _same_shape(m[0], layer)
    if identity == "els":
        return {"type": "els", "in": layer.in_channels, "out": layer.out_channels}
    return {"type": "identity"}


def _pool(m: re.Match[str], layer: LayerSpec, identity: str) -> BlockConfig:
    _same_shape(m[0], layer)
    return {"type": "avgpool", "kernel": int(m["k"])}


def _none(m: re.Match[str], layer: LayerSpec, identity: str) -> BlockConfig:
    _same_shape(m[0], layer)
    return {"type": "zero"}


register_op(r"^none$", _none)
register_op(r"^(skip_connect|skip)$", _skip)
register_op(
    r"^nor_conv_(?P<k>\d)x(?P=k)$",
    lambda m, l, i: {
        "type": "relu_conv_bn",
        "in": l.in_channels,
        "out": l.out_channels,
        "kernel": int(m["k"]),
        "stride": l.stride,
    },
)
register_op(r"^avg_pool_(?P<k>\d)x(?P=k)$", _pool)
register_op(
    r"^conv(?P<k>\d)x(?P=k)$",
    lambda m, l, i: {
        "type": "conv",
        "in": l.in_channels,
        "out": l.out_channels,
        "kernel": int(m["k"]),
        "stride": l.stride,
        "act": l.act,
    },
)


def cell_op_config(op: str, layer: LayerSpec, identity: str, exported: bool) -> dict[str, Any]:
    """An edge op's `{"name", "block"}`: as trained in the supernet or, with `exported`, as in the
    stand-alone model, where an ELS that keeps the shape is folded away (as for chain identities)."""
    block = dict(candidate_config(op, layer, identity))
    if exported and block["type"] == "els" and layer.keeps_shape:
        block = {"type": "identity"}
    return {"name": op, "block": block}


def cell_config(
    entry: BlockConfig, layers: Sequence[LayerSpec], ops: Sequence[Sequence[str]], identity: str, exported: bool
) -> dict[str, Any]:
    """The block config of a space's `{"type": "cell", "channels": C, ...}` body entry with
    `ops[i]` the op names of edge i: one each (stand-alone, key `ops`) or all candidates (`candidates`)."""
    c = entry["channels"]
    edge_layers = [replace(layer, in_channels=c, out_channels=c, stride=1) for layer in layers]
    lists = [
        [cell_op_config(op, layer, identity, exported) for op in names]
        for layer, names in zip(edge_layers, ops, strict=True)
    ]
    config = {k: v for k, v in entry.items() if k not in ("ops", "candidates")}
    if exported:
        config["ops"] = [only for (only,) in lists]
    else:
        config["candidates"] = lists
    return config
