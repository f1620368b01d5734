"""NAS-Bench-Macro (Su et al., CVPR 2021): a CIFAR-10 chain benchmark of 3^8 = 6561 trained archs.

3x3 conv 32 (stride 1) + BN + ReLU; 8 searchable layers in stages of 2, 3, 3, the first of each
with stride 2 and twice the width (32 -> 64 -> 128 -> 256); choices `0` identity (a 1x1 conv
with that stride + BN where the shape changes), `1` MB e3 k3, `2` MB e6 k5 (ReLU); 1x1 conv 1280
+ BN + ReLU, pool, linear. Archs are written as 8 digits, e.g. `02012100`.
"""

from __future__ import annotations

from typing import Any

from supernet.space.registry import register_space
from supernet.space.space import SearchSpace
from supernet.space.zoo.common import check_backbone, classifier_head, make_divisible, options_of, stage_layers

MACRO_OPS = ("id", "e3k3", "e6k5")  # the benchmark's codes 0, 1, 2
MACRO_STAGES = ((64, 2, 2), (128, 3, 2), (256, 3, 2))

PRESETS: dict[str, dict[str, Any]] = {
    "cifar10": {"width": 1.0, "resolution": 32, "input_channels": 3, "num_classes": 10},
    "fashion-mnist": {"width": 0.25, "resolution": 28, "input_channels": 1, "num_classes": 10, "head_channels": 256},
}


@register_space(
    "nas-bench-macro", "NAS-Bench-Macro: CIFAR-10 chain of 8 layers of id / MB e3k3 / MB e6k5 (3^8)", PRESETS
)
def nas_bench_macro(
    width: float = 1.0,
    resolution: int = 32,
    input_channels: int = 3,
    num_classes: int = 10,
    head_channels: int = 1280,
    layers_per_stage: tuple[int, ...] | None = None,
    dropout: float = 0.0,
) -> SearchSpace:
    check_backbone(width, resolution, input_channels, num_classes, 1)
    options = options_of(
        width=width,
        resolution=resolution,
        input_channels=input_channels,
        num_classes=num_classes,
        head_channels=head_channels,
        layers_per_stage=layers_per_stage,
        dropout=dropout,
    )
    c = lambda ch: make_divisible(ch * width)  # noqa: E731
    stem_ch = c(32)
    stem = ({"type": "conv", "in": input_channels, "out": stem_ch, "kernel": 3, "act": "relu"},)
    layers, cout = stage_layers(stem_ch, MACRO_STAGES, lambda i, keeps: MACRO_OPS, "relu", c, layers_per_stage)
    head = classifier_head(cout, make_divisible(head_channels * max(1.0, width)), num_classes, "relu", dropout)
    return SearchSpace(
        "nas-bench-macro",
        (input_channels, resolution, resolution),
        num_classes,
        stem,
        layers,
        head,
        options,
        compact_digits=True,
    )
