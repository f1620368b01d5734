"""SCARLET-NAS S2 (Chu et al., 2019): S1 plus an SE variant of every inverted bottleneck.

As in the released SCARLET-A/B/C code: the searchable blocks use hard-swish and put SE (biased
1x1 convs squeezing the expanded width by 4, ReLU, hard-sigmoid) after the depthwise conv; the
stem, the separable block and the head keep ReLU6; the head has no extra layer.
"""

from __future__ import annotations

from supernet.space.registry import register_space
from supernet.space.space import SearchSpace
from supernet.space.zoo.common import backbone_factory, ibn_arch, with_named_archs
from supernet.space.zoo.mobilenet import IBN_OPS, PRESETS, ScarletOptions, mobilenet_chain

SE_IBN_OPS = tuple(name for op in IBN_OPS for name in (op, f"{op}_se"))
"""The LET paper's Table 1 numbering: 0 e3k3, 1 e3k3 with SE, 2 e3k5, ..., 11 e6k7 with SE (12: identity)."""

# SCARLET paper Fig. 4 / released models (expansion-kernel, + = SE, ID = identity).
SCARLET_ARCHS = {
    "scarlet-a": ibn_arch(
        "3-7 6-5 | 3-5 3-7+ 6-3+ 3-5+ | 6-3+ 3-3 3-7+ 3-7 | 3-5 3-7+ 3-3 3-7+ | 6-3+ 6-5+ 3-3+ 6-3+ | 6-7+"
    ),
    "scarlet-b": ibn_arch(
        "3-3+ 3-5+ | 3-3+ 6-7+ 3-3 3-5 | 6-7+ 3-3+ ID 3-5 | 3-3+ 3-3+ 6-7+ 3-3+ | 6-5+ 6-5+ ID 6-7+ | 6-5+"
    ),
    "scarlet-c": ibn_arch(
        "3-5+ 3-3+ | 3-5+ ID ID 3-3 | 6-7+ 3-3+ 3-3+ 3-5 | 3-7+ 3-7 3-3+ 3-7+ | 3-3+ ID 6-3+ 6-7+ | 6-5+"
    ),
}


@register_space(
    "scarlet-s2",
    "SCARLET-NAS S2: S1 with an SE variant of each MB block, hard-swish blocks (13 choices: 13^19)",
    PRESETS,
)
@backbone_factory(ScarletOptions)
def scarlet_s2(opts: ScarletOptions) -> SearchSpace:
    """`identity_in` as in scarlet-s1: 'all' (default, the paper's 13^19), 'same-shape' or 'none'."""
    space = mobilenet_chain("scarlet-s2", opts.options(), ops=SE_IBN_OPS, identity_in=opts.identity_in, act="hswish")
    return with_named_archs(space, SCARLET_ARCHS)
