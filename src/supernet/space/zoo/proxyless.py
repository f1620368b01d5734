"""The ProxylessNAS (Cai et al., ICLR 2019) MobileNetV2 space, as used by PAD-NAS (basic) and SPOS Table 5.

PAD-NAS Table 1: 3x3 conv 32 stride 2; one searchable block to 16 with expansion fixed to 1
(kernels 3/5/7); 21 searchable blocks in stages of 32x4, 40x4, 80x4, 96x4, 192x4, 320x1 with
stride 2 at the first block of the 32, 40, 80 and 192 stages; MB e{3,6} k{3,5,7} (PAD-NAS
Table 2 order) plus identity, except in the first block of a stage; 1x1 conv 1280, pool, fc.
Size 3 x 6^6 x 7^15. All activations ReLU6.
"""

from __future__ import annotations

from supernet.space.registry import register_space
from supernet.space.space import LayerSpec, SearchSpace
from supernet.space.zoo.common import (
    Backbone,
    backbone_factory,
    classifier_head,
    ibn_arch,
    make_divisible,
    stage_layers,
    with_named_archs,
)
from supernet.space.zoo.mobilenet import PRESETS

PROXYLESS_STAGES = ((32, 4, 2), (40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1))
FIRST_OPS = ("e1k3", "e1k5", "e1k7")
PROXYLESS_OPS = ("e3k3", "e6k3", "e3k5", "e6k5", "e3k7", "e6k7")  # PAD-NAS Table 2: IBConv_K{3,5,7}_E{3,6}

# ProxylessNAS-Mobile (ProxylessNAS Fig. 4 / the released `proxyless_mobile` net): 320M MACs, 4.1M params.
PROXYLESS_ARCHS = {
    "proxylessnas-mobile": ibn_arch(
        "1-3 | 3-5 3-3 ID ID | 3-7 3-3 3-5 3-5 | 6-7 3-5 3-5 3-5 | 6-5 3-5 3-5 3-5 | 6-7 6-7 3-7 3-7 | 6-7"
    ),
}


@register_space(
    "proxyless",
    "ProxylessNAS / PAD-NAS basic MobileNetV2 space: 22 MB blocks, "
    "identity only after a stage's first block (3 x 6^6 x 7^15)",
    PRESETS,
)
@backbone_factory(Backbone)
def proxyless(opts: Backbone) -> SearchSpace:
    """`layers_per_stage`: depths of the six stages after the first block (default 4, 4, 4, 4, 4, 1)."""
    opts.check()
    width, input_channels, stem_stride = opts.width, opts.input_channels, opts.stem_stride
    c = lambda ch: make_divisible(ch * width)  # noqa: E731
    stem_ch, first_ch = c(32), c(16)
    stem = ({"type": "conv", "in": input_channels, "out": stem_ch, "kernel": 3, "stride": stem_stride, "act": "relu6"},)
    first = LayerSpec(stem_ch, first_ch, 1, FIRST_OPS, "relu6")
    layers, cout = stage_layers(
        first_ch,
        PROXYLESS_STAGES,
        lambda i, keeps: PROXYLESS_OPS + (("id",) if i > 0 else ()),
        "relu6",
        c,
        opts.layers_per_stage,
    )
    head_ch = make_divisible(opts.head_channels * max(1.0, width))
    head = classifier_head(cout, head_ch, opts.num_classes, "relu6", opts.dropout)
    shape = (input_channels, opts.resolution, opts.resolution)
    space = SearchSpace("proxyless", shape, opts.num_classes, stem, (first, *layers), head, opts.options())
    return with_named_archs(space, PROXYLESS_ARCHS)
