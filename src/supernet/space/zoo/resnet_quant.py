"""SPOS mixed-precision quantization spaces (Guo et al., ECCV 2020, section 4, Table 6).

ResNet-18 / ResNet-34: a full-precision stem (7x7 conv 64 stride 2 + BN + ReLU, 3x3 max-pool
stride 2) and head (global pool, linear); the residual blocks are searched. Each block chooses
(weight bits, activation bits) from {(1,2), (2,2), (1,4), (2,4), (3,4), (4,4)} (both convs share them)
and its bottleneck width (the output of its first conv) from {0.5x, 1.0x, 1.5x}: 18 choices per
block, 18^8 (ResNet-18) or 18^16 (ResNet-34) archs. Op names `w2a4@1.5`; blocks in
`supernet.ops.quant` (PACT activations, DoReFa weights).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from supernet.core.errors import SpaceError
from supernet.space.opnames import scale_name
from supernet.space.registry import register_space
from supernet.space.space import SearchSpace
from supernet.space.zoo.common import check_backbone, options_of, stage_layers, with_named_archs

SPOS_BITS = ((1, 2), (2, 2), (1, 4), (2, 4), (3, 4), (4, 4))  # (weight bits, activation bits)
SPOS_BOTTLENECK_SCALES = (0.5, 1.0, 1.5)
RESNET_STAGES = {
    "resnet18-quant": ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)),
    "resnet34-quant": ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)),
}

PRESETS: dict[str, dict[str, Any]] = {
    "imagenet": {"width": 1.0, "resolution": 224, "input_channels": 3, "num_classes": 1000},
    # CIFAR-style stem: 3x3 conv stride 1, no max-pool
    "cifar": {
        "width": 0.5,
        "resolution": 32,
        "input_channels": 3,
        "num_classes": 10,
        "stem_stride": 1,
        "stem_kernel": 3,
        "stem_pool": False,
    },
    "fashion-mnist": {
        "width": 0.25,
        "resolution": 28,
        "input_channels": 1,
        "num_classes": 10,
        "stem_stride": 1,
        "stem_kernel": 3,
        "stem_pool": False,
    },
}


def resnet_quant(
    name: str,
    width: float = 1.0,
    resolution: int = 224,
    input_channels: int = 3,
    num_classes: int = 1000,
    stem_stride: int = 2,
    stem_kernel: int = 7,
    stem_pool: bool = True,
    bits: tuple = SPOS_BITS,
    bottleneck_scales: tuple = SPOS_BOTTLENECK_SCALES,
    layers_per_stage: tuple[int, ...] | None = None,
) -> SearchSpace:
    """The space `name` (a key of RESNET_STAGES); registered once per depth with `name` bound, so the
    registered factory's options are the parameters after it."""
    check_backbone(width, resolution, input_channels, num_classes, stem_stride)
    ops = _choices(name, bits, bottleneck_scales)
    if stem_kernel not in (3, 5, 7):
        raise SpaceError(f"{name}: stem_kernel must be 3, 5 or 7, got {stem_kernel}")
    options = options_of(
        width=width,
        resolution=resolution,
        input_channels=input_channels,
        num_classes=num_classes,
        stem_stride=stem_stride,
        stem_kernel=stem_kernel,
        stem_pool=stem_pool,
        bits=[list(b) for b in bits],
        bottleneck_scales=tuple(float(s) for s in bottleneck_scales),
        layers_per_stage=layers_per_stage,
    )
    c = lambda ch: max(1, int(ch * width + 0.5))
    stem_ch = c(64)
    stem: tuple[dict[str, Any], ...] = (
        {
            "type": "conv",
            "in": input_channels,
            "out": stem_ch,
            "kernel": stem_kernel,
            "stride": stem_stride,
            "act": "relu",
        },
    )
    if stem_pool:
        stem += ({"type": "stem_maxpool", "kernel": 3, "stride": 2},)
    layers, cout = stage_layers(stem_ch, RESNET_STAGES[name], lambda i, keeps: ops, "relu", c, layers_per_stage)
    head = ({"type": "pool"}, {"type": "linear", "in": cout, "out": num_classes, "bias": True})
    space = SearchSpace(name, (input_channels, resolution, resolution), num_classes, stem, layers, head, options)
    # Table 6's uniform baselines kWkA (bottleneck 1.0x), where the space has them (3W3A is not a choice)
    uniform = {f"{k}w{k}a": ",".join([scale_name(f"w{k}a{k}", 1.0)] * len(layers)) for k in (2, 3, 4)}
    return with_named_archs(space, uniform)


def _choices(name: str, bits: tuple, scales: tuple) -> tuple[str, ...]:
    pairs = [tuple(b) for b in bits] if isinstance(bits, (list, tuple)) else []
    if (
        not pairs
        or any(
            len(p) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 32 for v in p)
            for p in pairs
        )
        or len(set(pairs)) != len(pairs)
    ):
        raise SpaceError(
            f"{name}: bits must be distinct (weight bits, activation bits) pairs of ints in 1..32, got {bits!r}"
        )
    scales = tuple(scales) if isinstance(scales, (list, tuple)) else ()
    if (
        not scales
        or any(isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s <= 8 for s in scales)
        or len(set(scales)) != len(scales)
    ):
        raise SpaceError(f"{name}: bottleneck_scales must be distinct numbers in (0, 8], got {scales!r}")
    return tuple(scale_name(f"w{w}a{a}", s) for w, a in pairs for s in scales)


register_space(
    "resnet18-quant",
    "SPOS Table 6: ResNet-18 res-blocks choose (weight, activation) bits and bottleneck width 0.5/1.0/1.5x (18^8)",
    PRESETS,
)(partial(resnet_quant, "resnet18-quant"))
register_space(
    "resnet34-quant",
    "SPOS Table 6: ResNet-34 res-blocks choose (weight, activation) bits and bottleneck width 0.5/1.0/1.5x (18^16)",
    PRESETS,
)(partial(resnet_quant, "resnet34-quant"))
