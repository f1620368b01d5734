"""Stand-alone model configs: the plain JSON-able description of the model an arch denotes.

They sit next to `build_block` because they only combine a space with candidate block configs; the
model layer builds them (`StandaloneNet`) and the cost layer counts them, neither the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from supernet.core.errors import ConfigError
from supernet.core.registry import Registry
from supernet.ops.candidates import IDENTITY, candidate_config, exported_config
from supernet.ops.cells import cell_config
from supernet.ops.quant import bit_widths, block_bits
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace

CONFIG_FORMAT = "supernet.standalone/1"


def standalone_config(space: SearchSpace, arch: Arch, identity: str = "skip", keep_els: bool = False) -> dict[str, Any]:
    """The config of the stand-alone model an arch denotes (identities that keep shape removed, the
    SCARLET rule for a model trained from scratch; `keep_els`: shape-keeping ELS stay 1x1 conv blocks)."""
    return STANDALONE_CONFIGS.get(space.topology)(space, arch, identity, keep_els)


def chain_standalone_config(
    space: SearchSpace, arch: Arch, identity: str = "skip", keep_els: bool = False
) -> dict[str, Any]:
    """Stem, the exported block of each layer's op, head."""
    arch = space.validate(arch)
    blocks = [dict(b) for b in space.stem]
    blocks += [
        dict(
            candidate_config(op, layer, identity)
            if keep_els and identity == "els" and op == IDENTITY
            else exported_config(op, layer, identity)
        )
        for layer, op in zip(space.layers, arch.ops)
    ]
    blocks += [dict(b) for b in space.head]
    config = _config(space, arch, blocks)
    if any(block_bits(b) is not None for b in blocks):  # quantized (SPOS Table 6): list every layer's bits
        config["bit_widths"] = bit_widths(blocks)
    return config


def let_standalone_config(space: SearchSpace, arch: Arch) -> dict[str, Any]:
    """The LET paper's model for stand-alone training (SCARLET-NAS LET, Fig. 2, right) of an arch of a chain
    space with ELS identities: every identity layer is dropped and the next block takes the channels that
    reach it (its input channels adjusted, n3 >= n2 >= n1). A strided identity keeps its downsampling as
    a parameter-free `subsample` (what its strided 1x1 conv does spatially), so the resolution schedule
    stays: the ELS paper's all-identity model (Table 8, 23M FLOPs) is the stem and the tail at 7x7.
    One block per layer (`identity` or `subsample` for a dropped identity), as in `chain_standalone_config`."""
    arch = space.validate(arch)
    blocks = [dict(b) for b in space.stem]
    channels = space.layers[0].in_channels if space.layers else None
    for layer, op in zip(space.layers, arch.ops):
        if op == IDENTITY:
            blocks.append({"type": "subsample", "stride": layer.stride} if layer.stride > 1 else {"type": "identity"})
            continue
        blocks.append(with_input(exported_config(op, layer, "els"), channels))
        channels = layer.out_channels
    config = _config(space, arch, blocks + let_head(space, channels))
    config["let"] = True
    return config


def let_head(space: SearchSpace, channels: int | None) -> list[dict[str, Any]]:
    """The space's head taking `channels` input channels (its first block with an `in` adjusted)."""
    head = [dict(b) for b in space.head]
    first = next((i for i, b in enumerate(head) if "in" in b), None)
    if first is not None:
        head[first] = with_input(head[first], channels)
    return head


def with_input(block: Mapping[str, Any], channels: int | None) -> dict[str, Any]:
    """`block` taking `channels` input channels (a depthwise conv keeps its groups equal to them)."""
    out = dict(block)
    if channels is None or out.get("in") == channels:
        return out
    if out.get("groups", 1) != 1:
        raise ConfigError(f"the LET model cannot change the input channels of a grouped block {out}")
    out["in"] = channels
    return out


def retrain_mode(space: SearchSpace, identity: str, let: bool | None = None) -> str:
    """How an arch's model for training from scratch treats identities: `let` (the LET paper's model, the
    default for a chain space with ELS identities) or the supernet's `identity` mode; `let=False` keeps
    the strided 1x1 ELS convs, `let=True` asks for the LET model."""
    can = identity == "els" and space.topology == "chain"
    if let and not can:
        raise ConfigError(
            f"the LET model is for chain spaces with ELS identities; space '{space.name}' "
            f"({space.topology}) has identity {identity!r}"
        )
    return "let" if can and let is not False else identity


def retrain_config(space: SearchSpace, arch: Arch, identity: str, let: bool | None = None) -> dict[str, Any]:
    """The config of the model `supernet retrain` trains from scratch (`retrain_mode`)."""
    if retrain_mode(space, identity, let) == "let":
        return let_standalone_config(space, arch)
    return standalone_config(space, arch, identity)


def is_cell(block: Any) -> bool:
    return block["type"] == "cell"


def cell_standalone_config(
    space: SearchSpace, arch: Arch, identity: str = "skip", biases: bool = False
) -> dict[str, Any]:
    """The stand-alone config of `arch` in a cell space: stem, body (each cell with the arch's ops,
    ELS folded into skips), head. With `biases` (inter-choice `bias`), each cell lists the edges
    whose op gets a constant input bias (`bias_edges`: every edge but the zero ones); without, the
    config is that of the plain model."""
    arch = space.validate(arch)
    ops = [[op] for op in arch.ops]
    blocks = [dict(b) for b in space.stem]
    for b in space.body:
        if not is_cell(b):
            blocks.append(dict(b))
            continue
        cell = cell_config(b, space.layers, ops, identity, exported=True)
        if biases:
            cell["bias_edges"] = [i for i, op in enumerate(cell["ops"]) if op["block"]["type"] != "zero"]
        blocks.append(cell)
    blocks += [dict(b) for b in space.head]
    return _config(space, arch, blocks)


def _config(space: SearchSpace, arch: Arch, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """A stand-alone config: what it was exported from and its blocks, in order."""
    return {
        "format": CONFIG_FORMAT,
        "space": space.name,
        "space_options": dict(space.options),
        "arch": arch.to_string(),
        "input_shape": list(space.input_shape),
        "num_classes": space.num_classes,
        "blocks": blocks,
    }


StandaloneConfigFn = Callable[[SearchSpace, Arch, str, bool], dict[str, Any]]
"""`(space, arch, identity, keep_els) -> config`."""
STANDALONE_CONFIGS: Registry[StandaloneConfigFn] = Registry("space topology", ConfigError)
"""Topology (`SearchSpace.topology`) -> builder of the stand-alone config of an arch."""
STANDALONE_CONFIGS.register("chain", chain_standalone_config)
STANDALONE_CONFIGS.register(
    "cells", lambda space, arch, identity, keep_els: cell_standalone_config(space, arch, identity)
)
