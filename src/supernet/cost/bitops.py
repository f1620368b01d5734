"""BitOps (SPOS Table 6): multiply-accumulates times weight bits times activation bits.

A quantized block (its exported config has `wbits` and `abits`; every conv in it runs at those
bits) costs its MACs x wbits x abits. Full-precision layers (the stem conv and the last linear,
which SPOS keeps in float) count 0: Table 6's uniform baselines scale exactly with k^2 (ResNet-18
2W2A 6.32G, 3W3A 14.21G, 4W4A 25.27G = 1.58G x 4, 9, 16), so the paper's totals leave them out.
With every res-block conv counted (projection shortcuts included), our ImageNet ResNet-18/34 give
exactly Table 6's six kWkA numbers when the paper's "G" is read as 2^30 (`--max-bitops 6.32Gi`).
The metric exists only for spaces with quantized choices.
"""

from __future__ import annotations

from collections.abc import Mapping

from supernet.ops.candidates import exported_config
from supernet.ops.quant import block_bits
from supernet.space.space import SearchSpace

METRIC = "bitops"


def without_bits(config: Mapping) -> dict:
    """A block config with its bit widths left out (they change neither MACs nor parameters)."""
    return {k: v for k, v in config.items() if k not in ("wbits", "abits")}


def is_quantized(space: SearchSpace, identity: str = "skip") -> bool:
    return any(
        block_bits(exported_config(op, layer, identity)) is not None for layer in space.layers for op in layer.choices
    )


def bitops_rows(space: SearchSpace, identity: str, macs: list[Mapping[str, int]]) -> list[dict[str, int]]:
    """Per layer, op -> BitOps, from the layer's per-op MACs."""
    rows = []
    for layer, layer_macs in zip(space.layers, macs, strict=True):
        row = {}
        for op in layer.choices:
            bits = block_bits(exported_config(op, layer, identity))
            row[op] = 0 if bits is None else layer_macs[op] * bits[0] * bits[1]
        rows.append(row)
    return rows
