"""The weight-sharing supernet of cell spaces (`SearchSpace.topology == "cells"`).

The space's `layers` are the choices of one cell (its edges or nodes); `body` lists the blocks
between stem and head, with `{"type": "cell", ...}` wherever that cell sits. Every cell holds all
candidates of every edge, with its own weights, and runs the arch's op on each edge (a `none`
edge runs nothing). Like `Supernet`, the arch is an argument of `forward`, never state.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from supernet.core.errors import ConfigError, SpaceError
from supernet.model.interchoice import InputBiases, context_layers, split_if_saved_split
from supernet.model.standalone import StandaloneNet, copy_block_weights
from supernet.model.supernet import MultiPath, SupernetOptions, SupernetPath
from supernet.ops.blocks import build_block
from supernet.ops.cells import Cell, cell_config
from supernet.ops.standalone import cell_standalone_config, is_cell
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace

TOPOLOGY = "cells"


class CellSupernet(nn.Module):
    """All candidates of every edge of every cell; `forward(x, arch)` runs the arch's path only."""

    topology = TOPOLOGY

    def __init__(self, space: SearchSpace, options: SupernetOptions | None = None) -> None:
        super().__init__()
        options = options if options is not None else SupernetOptions()
        if space.topology != TOPOLOGY:
            raise ConfigError(f"CellSupernet builds '{TOPOLOGY}' spaces; '{space.name}' is '{space.topology}'")
        self.space, self.options = space, options
        affine = options.bn_affine
        all_ops = [layer.choices for layer in space.layers]
        self.stem = nn.Sequential(*(build_block(c, affine) for c in space.stem))
        self.body = nn.ModuleList(
            build_block(
                cell_config(b, space.layers, all_ops, options.identity, exported=False) if is_cell(b) else b, affine
            )
            for b in space.body
        )
        self.head = nn.Sequential(*(build_block(c, affine) for c in space.head))
        if options.zero_init_residual:
            for module in self.modules():
                if hasattr(module, "zero_init_residual"):
                    module.zero_init_residual()
        # Inter-choice dependent weights, per cell instance; "previous" follows the edge order
        # (`previous_layers`: edge e's previous edges are e-1, e-2, ...; the first edge gets `start`).
        self.split_context = None
        if options.interchoice == "bias":
            if options.interchoice_bias_at != "input":
                raise ConfigError(
                    "cell supernets add inter-choice biases at the edge input (their ops start with "
                    "ReLU); use supernet.interchoice_bias_at=input"
                )
            for block, cell in zip(space.body, self.body):
                if isinstance(cell, Cell):
                    without = [set(names) - set(ops) for names, ops in zip(cell.names, cell.ops)]  # zero ops
                    cell.biases = InputBiases(space, options.interchoice_depth, block["channels"], without)
        elif options.interchoice == "split":
            # Part of the state dict, so that a checkpoint records whether the split happened.
            self.register_buffer("interchoice_split", torch.zeros((), dtype=torch.long))
            self.split_context = [context_layers(space, i, 1) for i in range(space.num_layers)]

    def cells(self) -> list[Cell]:
        return [m for m in self.body if isinstance(m, Cell)]

    # -- inter-choice split (as `Supernet.split_interchoice`) ----------------------------------------
    @property
    def is_split(self) -> bool:
        return self.split_context is not None and bool(self.interchoice_split)

    def sliced_masks(self, paths: Iterable[SupernetPath]) -> dict[nn.Parameter, torch.Tensor]:
        """Cell edges have no width choices: nothing is shared by slicing."""
        return {}

    def split_interchoice(self) -> dict[nn.Parameter, nn.Parameter]:
        """Copy every edge op of every cell once per choice of its previous edge (`start` for the
        first edge). Returns {copy's parameter: original}; calling it again does nothing ({})."""
        if self.split_context is None:
            raise ConfigError("split_interchoice needs supernet.interchoice=split")
        if self.is_split:
            return {}
        previous = [prev[-1] if prev else None for prev in self.split_context]
        names = [self.space.layers[p].choices if p is not None else () for p in previous]
        origin: dict[nn.Parameter, nn.Parameter] = {}
        for cell in self.cells():
            origin.update(cell.split(previous, names))
        self.interchoice_split.fill_(1)
        return origin

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """Like nn.Module's; a state saved after the split first splits this supernet."""
        split_if_saved_split(self, state_dict)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

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
        """All weights of `op` on edge `layer`, over all cells (after a split: of all its copies)."""
        if op not in self.space.layers[layer].choices:
            raise SpaceError(f"layer {layer}: '{op}' is not a choice")
        for cell in self.cells():
            if op in cell.ops[layer]:
                yield from cell.ops[layer][op].parameters()

    def run_layer(self, i: int, ops: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
        """A cell space's searchable layers are edges inside every cell, not steps of one chain."""
        raise ConfigError(
            f"space '{self.space.name}' is a cell space: its edges are not layers of a chain "
            f"(layer-wise studies such as `supernet similarity` need a chain space)"
        )

    def path_biases(self, arch: Arch) -> list[None]:
        """Chain-layer input biases: none (a cell space's biases sit on the cells' edges, see
        `Cell.input_bias`; `export` carries them into the stand-alone cells)."""
        return [None] * len(arch)

    def export(self, arch: Arch, drop_els: bool = False) -> StandaloneNet:
        """The stand-alone model of `arch` with this supernet's weights for that path (a cell's ELS are
        folded into its skips, so `drop_els` changes nothing here)."""
        if isinstance(arch, MultiPath):
            raise ValueError("only a single-path arch can be exported")
        config = cell_standalone_config(
            self.space, arch, self.options.identity, biases=self.options.interchoice == "bias"
        )
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
                    (module,) = source._edge(i, op, arch.ops)  # after a split: the copy `arch` selects
                    copy_block_weights(module, target.ops[i][op])
                bias = source.input_bias(i, arch.ops) if op in source.ops[i] else None
                if bias is not None:
                    with torch.no_grad():
                        target.edge_bias[str(i)].copy_(bias)
        if next(targets, None) is not None:
            raise RuntimeError("exported model has more blocks than its config")
        return model
