"""The NAS-Bench-101 chain sub-space of SCARLET-NAS section 6.2 (Fig. 6): 3^5 = 243 archs.

3x3 conv 128 + BN + ReLU; three stacks of `cells_per_stack` (3) cells at 128, 256, 512 channels
(times `width`), a 2x2 max-pool of stride 2 between stacks (the width doubles in the next cell's
projection), as in NAS-Bench-101; global pool, linear. A cell is a 1x1 Conv-BN-ReLU projection
followed by a chain of 5 nodes, each choosing `conv1x1`, `conv3x3` (Conv-BN-ReLU) or `skip`. The
5 choices are shared by all 9 cells. `skip` follows the supernet's identity handling: with
`identity="els"` it is SCARLET's equivariant learnable stabilizer (a bare 1x1 conv initialised
to the identity), folded away (a plain skip) in stand-alone models.
"""

from __future__ import annotations

from typing import Any

from supernet.space.registry import register_space
from supernet.space.space import LayerSpec, SearchSpace
from supernet.space.zoo.common import options_of
from supernet.space.zoo.nasbench201 import cell_space_checks

NB101_CHAIN_OPS = ("conv1x1", "conv3x3", "skip")  # SCARLET Fig. 6 (b)
NODES = 5

PRESETS: dict[str, dict[str, Any]] = {
    "cifar10": {"width": 1.0, "resolution": 32, "input_channels": 3, "num_classes": 10},
    "fashion-mnist": {"width": 0.125, "resolution": 28, "input_channels": 1, "num_classes": 10},  # 16/32/64
}


@register_space(
    "nas-bench-101-chain",
    "SCARLET 6.2: NAS-Bench-101 cells as a chain of 5 nodes of conv1x1 / "
    "conv3x3 / skip, one cell repeated 9 times (3^5)",
    PRESETS,
)
def nas_bench_101_chain(
    width: float = 1.0, resolution: int = 32, input_channels: int = 3, num_classes: int = 10, cells_per_stack: int = 3
) -> SearchSpace:
    cell_space_checks(width, resolution, input_channels, num_classes, cells_per_stack)
    options = options_of(
        width=width,
        resolution=resolution,
        input_channels=input_channels,
        num_classes=num_classes,
        cells_per_stack=cells_per_stack,
    )
    c = max(1, round(128 * width))
    stem = ({"type": "conv", "in": input_channels, "out": c, "kernel": 3, "act": "relu"},)
    body: list[dict[str, Any]] = []
    cin = c
    for stack, ch in enumerate((c, 2 * c, 4 * c)):
        if stack:
            body.append({"type": "maxpool", "kernel": 2, "stride": 2})
        for _ in range(cells_per_stack):
            body.append(
                {
                    "type": "cell",
                    "channels": ch,
                    "edges": [[i, i + 1] for i in range(NODES)],
                    "pre": {"type": "conv", "in": cin, "out": ch, "kernel": 1, "act": "relu"},
                }
            )
            cin = ch
    head = ({"type": "pool"}, {"type": "linear", "in": 4 * c, "out": num_classes})
    layers = tuple(LayerSpec(c, c, 1, NB101_CHAIN_OPS, "relu") for _ in range(NODES))
    return SearchSpace(
        "nas-bench-101-chain",
        (input_channels, resolution, resolution),
        num_classes,
        stem,
        layers,
        head,
        options,
        topology="cells",
        body=tuple(body),
    )
