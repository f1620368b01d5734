"""Costs of the LET paper's stand-alone models (`supernet.ops.standalone.let_standalone_config`).

In that model an identity is dropped and the next block takes the channels that reach it, so a block's cost
depends on its layer, its op and the layer of the last block before it: not a sum of one value per layer.
`LetCostTable` counts each (layer, op, input channels) block once, and the head once per input channels,
and prices an arch by walking it; `range` is exact (a pass over the channel states). It has no per-layer
rows (`layer_values`), so the MACs-binned sampler and additive plug-in metrics need the other modes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from supernet.core.errors import ConfigError, SpaceError
from supernet.cost.counter import count_all
from supernet.cost.value import BUILTIN_METRICS, Cost, Number
from supernet.ops.blocks import build_block
from supernet.ops.candidates import IDENTITY, exported_config
from supernet.ops.standalone import let_head, with_input
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace

LET = "let"


class LetCostTable:
    """MACs and params of the LET model of every arch of a chain space with ELS identities."""

    identity = LET

    def __init__(
        self,
        space: SearchSpace,
        fixed: Mapping[str, int],
        blocks: Sequence[Mapping[tuple[str, int], Mapping[str, int]]],
        head: Mapping[int, Mapping[str, int]],
    ) -> None:
        self.space_name, self.fingerprint = space.name, space.fingerprint()
        self.choices = tuple(tuple(layer.choices) for layer in space.layers)
        self._inputs = space.layers[0].in_channels if space.layers else 0
        self._outs = tuple(layer.out_channels for layer in space.layers)
        self._fixed, self._blocks, self._head = dict(fixed), [dict(b) for b in blocks], dict(head)

    @classmethod
    def build(cls, space: SearchSpace) -> LetCostTable:
        if space.topology != "chain":
            raise ConfigError(f"the LET model is for chain spaces; space '{space.name}' is {space.topology!r}")
        fixed, shape = {"macs": 0, "params": 0}, tuple(space.input_shape)
        for config in space.stem:
            macs, params, shape = count_all(build_block(config), shape)
            fixed["macs"] += macs
            fixed["params"] += params
        reach = {space.layers[0].in_channels} if space.layers else set()
        rows: list[dict[tuple[str, int], dict[str, int]]] = []
        for layer in space.layers:
            row, out = {}, None
            for op in layer.non_identity:
                for channels in sorted(reach):
                    config = with_input(exported_config(op, layer, "els"), channels)
                    macs, params, out = count_all(build_block(config), (channels, *shape[1:]))
                    row[(op, channels)] = {"macs": macs, "params": params}
            rows.append(row)
            shape = (layer.out_channels, *(out or _strided(shape, layer.stride))[1:])
            reach.add(layer.out_channels)
        head = {channels: _head_cost(space, channels, shape) for channels in sorted(reach)}
        return cls(space, fixed, rows, head)

    @property
    def metrics(self) -> tuple[str, ...]:
        return BUILTIN_METRICS

    @property
    def num_layers(self) -> int:
        return len(self.choices)

    def query(self, arch: Arch) -> Cost:
        return Cost(int(self.value(arch, "macs")), int(self.value(arch, "params")))

    def value(self, arch: Arch, metric: str) -> Number:
        if metric not in BUILTIN_METRICS:
            raise ConfigError(f"unknown cost metric {metric!r} for the LET model; have: {', '.join(BUILTIN_METRICS)}")
        if len(arch.ops) != len(self.choices):
            raise SpaceError(f"arch has {len(arch.ops)} layers, cost table has {len(self.choices)}")
        total, channels = self._fixed[metric], self._inputs
        for i, op in enumerate(arch.ops):
            if op not in self.choices[i]:
                raise SpaceError(f"layer {i}: '{op}' is not a choice; allowed: {', '.join(self.choices[i])}")
            if op != IDENTITY:
                total += self._blocks[i][(op, channels)][metric]
                channels = self._outs[i]
        return total + self._head[channels][metric]

    def fixed(self, metric: str) -> Number:
        """Cost of the stem (the head's depends on the channels that reach it)."""
        return self._fixed[metric]

    def range(self, metric: str) -> tuple[Number, Number]:
        """(min, max) of `metric` over all archs: one pass over the channels that can reach each layer."""
        return self._extreme(metric, min), self._extreme(metric, max)

    def macs_range(self) -> tuple[int, int]:
        lo, hi = self.range("macs")
        return int(lo), int(hi)

    def _extreme(self, metric: str, pick: Callable[..., Number]) -> Number:
        states = {self._inputs: self._fixed[metric]}  # channels reaching the next layer -> best cost so far
        for i, choices in enumerate(self.choices):
            nxt: dict[int, Number] = {}
            for channels, cost in states.items():
                for op in choices:
                    key, value = (
                        (channels, cost)
                        if op == IDENTITY
                        else (self._outs[i], cost + self._blocks[i][(op, channels)][metric])
                    )
                    nxt[key] = pick(nxt[key], value) if key in nxt else value
            states = nxt
        return pick(cost + self._head[channels][metric] for channels, cost in states.items())

    def layer_values(self, metric: str) -> Any:
        raise ConfigError(
            "the LET model's cost is no sum of one value per layer (a dropped identity changes the next block's "
            "input channels); use identity els or skip here"
        )

    layer_costs = layer_values

    def __repr__(self) -> str:
        lo, hi = self.macs_range()
        return f"LetCostTable(space={self.space_name!r}, layers={self.num_layers}, macs=[{lo}, {hi}])"


def _head_cost(space: SearchSpace, channels: int, shape: tuple[int, ...]) -> dict[str, int]:
    cost, shape = {"macs": 0, "params": 0}, (channels, *shape[1:])
    for config in let_head(space, channels):
        macs, params, shape = count_all(build_block(config), shape)
        cost["macs"] += macs
        cost["params"] += params
    return cost


def _strided(shape: tuple[int, ...], stride: int) -> tuple[int, ...]:
    """The shape after a layer of identities only: its stride subsamples (ceil, as a strided 1x1 conv)."""
    return (shape[0], *(-(-s // stride) for s in shape[1:]))
