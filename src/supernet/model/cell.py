"""The weight-sharing supernet of cell spaces (`SearchSpace.topology == "cells"`).

The space's `layers` are the choices of one cell (its edges or nodes); `body` lists the blocks
between stem and head, with `{"type": "cell", ...}` wherever that cell sits. Every cell holds all
candidates of every edge, with its own weights, and runs the arch's op on each edge (a `none`
edge runs nothing). Like `Supernet`, the arch is an argument of `forward`, never state.
"""
from __future__ import annotations

from typing import Any, Iterator

import torch
from torch import nn

from supernet.errors import ConfigError, SpaceError
from supernet.model.standalone import CONFIG_FORMAT, StandaloneNet
from supernet.model.supernet import MultiPath, SupernetOptions, SupernetPath
from supernet.ops.blocks import build_block
from supernet.ops.cells import Cell, cell_config
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace

TOPOLOGY = "cells"


def _is_cell(block: Any) -> bool:
    return block["type"] == "cell"


def cell_standalone_config(space: SearchSpace, arch: Arch, identity: str = "skip") -> dict[str, Any]:
    """The stand-alone config of `arch` in a cell space: stem, body (each cell with the arch's ops,
    ELS folded into skips), head."""
    arch = space.validate(arch)
    ops = [[op] for op in arch.ops]
    blocks = [dict(b) for b in space.stem]
    blocks += [cell_config(b, space.layers, ops, identity, exported=True) if _is_cell(b) else dict(b)
               for b in space.body]
    blocks += [dict(b) for b in space.head]
    return {"format": CONFIG_FORMAT, "space": space.name, "space_options": dict(space.options),
            "arch": arch.to_string(), "input_shape": list(space.input_shape),
            "num_classes": space.num_classes, "blocks": blocks}


class CellSupernet(nn.Module):
    """All candidates of every edge of every cell; `forward(x, arch)` runs the arch's path only."""

    def __init__(self, space: SearchSpace, options: SupernetOptions = SupernetOptions()) -> None:
        super().__init__()
        if space.topology != TOPOLOGY:
            raise ConfigError(f"CellSupernet builds '{TOPOLOGY}' spaces; '{space.name}' is '{space.topology}'")
        if options.interchoice != "none":
            raise ConfigError(f"supernet.interchoice={options.interchoice} is not supported for cell spaces "
                              f"('{space.name}'); use none")
        self.space, self.options = space, options
        affine = options.bn_affine
        all_ops = [layer.choices for layer in space.layers]
        self.stem = nn.Sequential(*(build_block(c, affine) for c in space.stem))
        self.body = nn.ModuleList(
            build_block(cell_config(b, space.layers, all_ops, options.identity, exported=False) if _is_cell(b) else b,
                        affine)
            for b in space.body)
        self.head = nn.Sequential(*(build_block(c, affine) for c in space.head))
        if options.zero_init_residual:
            for module in self.modules():
                if hasattr(module, "zero_init_residual"):
                    module.zero_init_residual()

    def cells(self) -> list[Cell]:
        return [m for m in self.body if isinstance(m, Cell)]

    def forward(self, x: torch.Tensor, arch: SupernetPath) -> torch.Tensor:
        ops = arch.ops
        if len(ops) != self.space.num_layers:
            raise ValueError(f"arch has {len(ops)} layers, supernet has {self.space.num_layers}")
        x = self.stem(x)
        for block in self.body:
            x = block(x, ops) if isinstance(block, Cell) else block(x)
        return self.head(x)

    def path_modules(self, arch: SupernetPath) -> Iterator[nn.Module]:
        """The modules an arch uses, in order: stem blocks, then per body block either the block or
        (a cell) its projection and the chosen op of each edge (none: nothing), then head blocks."""
        yield from self.stem
        for block in self.body:
            if isinstance(block, Cell):
                yield block.pre
                yield from block.edge_modules(arch.ops)
            else:
                yield block
        yield from self.head

    def candidate_parameters(self, layer: int, op: str) -> Iterator[nn.Parameter]:
        """All weights of `op` on edge `layer`, over all cells."""
        if op not in self.space.layers[layer].choices:
            raise SpaceError(f"layer {layer}: '{op}' is not a choice")
        for cell in self.cells():
            if op in cell.ops[layer]:
                yield from cell.ops[layer][op].parameters()

    def input_biases(self, arch: Arch) -> list[None]:
        return [None] * len(arch)  # no inter-choice weights in cell spaces

    def export(self, arch: Arch) -> StandaloneNet:
        """The stand-alone model of `arch` with this supernet's weights for that path."""
        from supernet.model.export import copy_block_weights

        if isinstance(arch, MultiPath):
            raise ValueError("only a single-path arch can be exported")
        config = cell_standalone_config(self.space, arch, self.options.identity)
        model = StandaloneNet(config)
        targets = iter(model)
        for source, block in zip([*self.stem, *self.body, *self.head], config["blocks"], strict=True):
            if block["type"] == "identity":  # dropped by StandaloneNet
                continue
            target = next(targets)
            if not isinstance(source, Cell):
                copy_block_weights(source, target)
                continue
            copy_block_weights(source.pre, target.pre)
            for i, op in enumerate(arch.ops):
                if op in target.ops[i] and not isinstance(target.ops[i][op], nn.Identity):  # (a folded ELS)
                    copy_block_weights(source.ops[i][op], target.ops[i][op])
        if next(targets, None) is not None:
            raise RuntimeError("exported model has more blocks than its config")
        return model
