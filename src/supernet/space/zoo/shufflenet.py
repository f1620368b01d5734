"""SPOS ShuffleNetV2 block space (Guo et al., ECCV 2020, Table 2): 20 choice blocks, 4^20 archs.

3x3 conv 16 stride 2 + BN + ReLU (no max-pool); choice blocks in stages of 4/4/8/4 with output
widths 64/160/320/640, stride 2 at each stage's first block, middle width = half the output;
1x1 conv 1024 + BN + ReLU, global pool, dropout, linear without bias.

Channel search (SPOS "Search Space: Channels", Table 4), option `channels`:
`none` (block search, 4^20), `search` (choice_3 blocks, each searching its middle width over
`channel_scales`, 0.2x..1.6x in steps of 0.2: 8^20) or `joint` (block and width together, 32^20).
Width choices are op names `choice_k@scale`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from supernet.core.errors import SpaceError
from supernet.space.opnames import scale_name
from supernet.space.registry import register_space
from supernet.space.space import SearchSpace
from supernet.space.zoo.common import (
    Backbone,
    backbone_factory,
    classifier_head,
    make_divisible,
    options_of,
    stage_layers,
    with_named_archs,
)

CHANNEL_MODES = ("none", "search", "joint")
SPOS_CHANNEL_SCALES = (0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6)  # SPOS "Search Space: Channels"
SHUFFLE_OPS = ("choice_3", "choice_5", "choice_7", "choice_x")  # SPOS index order; blocks in ops/shufflenet.py
SPOS_STAGES = ((64, 4, 2), (160, 4, 2), (320, 8, 2), (640, 4, 2))
# The searched model released with SPOS (README of megvii-model/SinglePathOneShot): 323M FLOPs, 3.5M params.
SPOS_ARCHS = {"spos-searched": "2,1,0,1,2,0,2,0,2,0,2,3,0,0,0,0,3,2,3,3"}


@dataclass(frozen=True)
class ShuffleOptions(Backbone):
    """The backbone plus SPOS's channel search (see the module's docstring)."""

    channels: str = "none"
    channel_scales: tuple[float, ...] = SPOS_CHANNEL_SCALES


PRESETS: dict[str, dict[str, Any]] = {
    "imagenet": {"width": 1.0, "resolution": 224, "input_channels": 3, "num_classes": 1000},
    "cifar": {"width": 0.5, "resolution": 32, "input_channels": 3, "num_classes": 10, "stem_stride": 1},
    "fashion-mnist": {
        "width": 0.25,
        "resolution": 28,
        "input_channels": 1,
        "num_classes": 10,
        "stem_stride": 1,
        "head_channels": 256,
    },
}


@register_space(
    "spos-shufflenet",
    "SPOS ShuffleNetV2 blocks: 20 layers of choice_3/5/7/x (4^20); "
    "channels=search|joint adds SPOS channel search (8^20, 32^20)",
    PRESETS,
)
@backbone_factory(ShuffleOptions, head_channels=1024, dropout=0.1)
def spos_shufflenet(opts: ShuffleOptions) -> SearchSpace:
    opts.check()
    width, input_channels, stem_stride, channels = opts.width, opts.input_channels, opts.stem_stride, opts.channels
    ops = _choices(channels, opts.channel_scales)
    options = opts.options(Backbone)
    if channels != "none":  # (left out otherwise, so that block-search fingerprints stay what they were)
        options.update(options_of(channels=channels, channel_scales=tuple(float(s) for s in opts.channel_scales)))
    c = lambda ch: make_divisible(ch * width)  # noqa: E731  (multiples of 8: halves split evenly)
    stem_ch = c(16)
    stem = ({"type": "conv", "in": input_channels, "out": stem_ch, "kernel": 3, "stride": stem_stride, "act": "relu"},)
    layers, cout = stage_layers(stem_ch, SPOS_STAGES, lambda i, keeps: ops, "relu", c, opts.layers_per_stage)
    narrow = [i for i, l in enumerate(layers) if l.stride == 2 and l.out_channels <= l.in_channels]
    if narrow:  # a stride-2 unit concatenates its projected input with main-branch channels
        raise SpaceError(
            f"width {width} leaves layer {narrow[0]} no wider than its input "
            f"({layers[narrow[0]].in_channels} -> {layers[narrow[0]].out_channels}); use a larger width"
        )
    head_ch = make_divisible(opts.head_channels * max(1.0, width))
    head = classifier_head(cout, head_ch, opts.num_classes, "relu", opts.dropout, bias=False)
    shape = (input_channels, opts.resolution, opts.resolution)
    space = SearchSpace("spos-shufflenet", shape, opts.num_classes, stem, layers, head, options)
    return with_named_archs(space, SPOS_ARCHS)


def _choices(channels: str, scales: tuple[float, ...]) -> tuple[str, ...]:
    """The op names of every layer for a `channels` mode."""
    if channels not in CHANNEL_MODES:
        raise SpaceError(f"spos-shufflenet: channels must be one of {', '.join(CHANNEL_MODES)}, got {channels!r}")
    if channels == "none":
        return SHUFFLE_OPS
    scales = tuple(scales) if isinstance(scales, (list, tuple)) else ()
    if (
        not scales
        or any(isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s <= 8 for s in scales)
        or len(set(scales)) != len(scales)
    ):
        raise SpaceError(f"spos-shufflenet: channel_scales must be distinct numbers in (0, 8], got {scales!r}")
    blocks = ("choice_3",) if channels == "search" else SHUFFLE_OPS
    return tuple(scale_name(b, s) for b in blocks for s in scales)
