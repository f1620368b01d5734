"""MobileNetV2-style chain spaces of FairNAS / SCARLET-NAS (S1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from supernet.core.errors import SpaceError
from supernet.space.registry import register_space
from supernet.space.space import SearchSpace
from supernet.space.zoo.common import (
    Backbone,
    backbone_factory,
    check_backbone,
    classifier_head,
    make_divisible,
    stage_layers,
)

# (output channels, number of layers, stride of the first layer): the FairNAS/SCARLET layout.
FAIRNAS_STAGES: tuple[tuple[int, int, int], ...] = (
    (32, 2, 2),
    (40, 4, 2),
    (80, 4, 2),
    (96, 4, 1),
    (192, 4, 2),
    (320, 1, 1),
)
IBN_OPS = tuple(f"e{e}k{k}" for e in (3, 6) for k in (3, 5, 7))  # SCARLET order: o = (x-3) + (y-3)/2
IDENTITY_PLACES = ("same-shape", "all", "none")

SMALL_PRESET: dict[str, Any] = {
    "width": 0.25,
    "resolution": 28,
    "input_channels": 1,
    "num_classes": 10,
    "stem_stride": 1,
    "head_channels": 256,
}
PRESETS = {
    "imagenet": {"width": 1.0, "resolution": 224, "input_channels": 3, "num_classes": 1000},
    "cifar": {"width": 0.5, "resolution": 32, "input_channels": 3, "num_classes": 10, "stem_stride": 1},
    "fashion-mnist": SMALL_PRESET,
}


@dataclass(frozen=True)
class ScarletOptions(Backbone):
    """SCARLET's S1/S2: the backbone plus where the identity choice goes."""

    identity_in: str = "all"


def mobilenet_chain(
    name: str, options: dict[str, Any], *, ops: Sequence[str], identity_in: str, act: str, divisor: int = 8
) -> SearchSpace:
    """The FairNAS backbone with the given candidate ops and identity placement. `options` are the factory's
    (`options_of`, stored on the space as they are): `width`, `resolution`, `input_channels`, `num_classes`,
    `stem_stride`, `head_channels`, `layers_per_stage` and `dropout` shape the backbone."""
    width, resolution, stem_stride = options["width"], options["resolution"], options["stem_stride"]
    input_channels, num_classes, dropout = options["input_channels"], options["num_classes"], options["dropout"]
    check_backbone(width, resolution, input_channels, num_classes, stem_stride)
    if identity_in not in IDENTITY_PLACES:
        raise SpaceError(f"identity_in must be one of {IDENTITY_PLACES}, got {identity_in!r}")
    c = lambda ch: make_divisible(ch * width, divisor)  # noqa: E731
    stem_ch, sep_ch = c(32), c(16)
    stem = (
        {"type": "conv", "in": input_channels, "out": stem_ch, "kernel": 3, "stride": stem_stride, "act": "relu6"},
        {"type": "conv", "in": stem_ch, "out": stem_ch, "kernel": 3, "groups": stem_ch, "act": "relu6"},
        {"type": "conv", "in": stem_ch, "out": sep_ch, "kernel": 1, "act": None},
    )

    def choices(index: int, keeps_shape: bool) -> tuple[str, ...]:
        with_id = identity_in == "all" or (identity_in == "same-shape" and keeps_shape)
        return tuple(ops) + (("id",) if with_id else ())

    layers, cin = stage_layers(sep_ch, FAIRNAS_STAGES, choices, act, c, options["layers_per_stage"])
    head_ch = make_divisible(options["head_channels"] * max(1.0, width), divisor)
    # bias=None: the linear block has no "bias" key (it has a bias all the same), as these spaces were
    # fingerprinted; with the key every saved FairNAS/SCARLET checkpoint would stop loading.
    head = classifier_head(cin, head_ch, num_classes, "relu6", dropout, bias=None)
    return SearchSpace(name, (input_channels, resolution, resolution), num_classes, stem, layers, head, options)


@register_space(
    "scarlet-s1",
    "SCARLET-NAS S1: FairNAS MobileNetV2 backbone, 19 layers of MB e{3,6} k{3,5,7} + identity (7^19)",
    PRESETS,
)
@backbone_factory(ScarletOptions)
def scarlet_s1(opts: ScarletOptions) -> SearchSpace:
    """`identity_in`: 'all' (default: the paper's S1, 7^19, SCARLET appendix C.1) allows the identity
    in every layer, where it becomes a 1x1 projection (skip) or a strided ELS conv where shapes
    change; 'same-shape' puts it only where a layer keeps resolution and width (as the released
    SCARLET models do; 6^6 x 7^13); 'none' leaves it out (FairNAS)."""
    return mobilenet_chain("scarlet-s1", opts.options(), ops=IBN_OPS, identity_in=opts.identity_in, act="relu6")
