"""FairNAS (Chu et al., ICCV 2021): the SCARLET-S1 MobileNetV2 backbone without identity, 6^19 archs."""

from __future__ import annotations

from supernet.space.registry import register_space
from supernet.space.space import SearchSpace
from supernet.space.zoo.common import Backbone, backbone_factory, ibn_arch, with_named_archs
from supernet.space.zoo.mobilenet import IBN_OPS, PRESETS, mobilenet_chain

# Per-layer choices of FairNAS-A/B/C (stages of 2, 4, 4, 4, 4, 1 layers; expansion-kernel), as in the
# `arch_def`s of the FairNAS-SE models released in xiaomi-automl/FairNAS (models/timm_models.py), minus SE.
FAIRNAS_ARCHS = {
    "fairnas-a": ibn_arch("3-7 3-3 | 3-7 6-3 6-7 3-3 | 3-3 6-7 6-7 3-5 | 6-3 3-5 3-5 6-3 | 6-3 6-7 6-3 6-7 | 6-5"),
    "fairnas-b": ibn_arch("3-5 3-3 | 3-5 3-3 6-3 3-5 | 3-7 3-3 6-3 3-5 | 3-3 6-3 3-7 3-3 | 6-7 6-5 6-7 6-3 | 6-5"),
    "fairnas-c": ibn_arch("3-5 3-3 | 3-7 3-3 3-3 3-3 | 3-3 3-3 3-3 6-3 | 3-3 3-3 3-3 3-3 | 6-7 6-7 6-3 6-3 | 6-5"),
}


@register_space(
    "fairnas", "FairNAS: MobileNetV2 backbone, 19 layers of MB e{3,6} k{3,5,7}, no identity (6^19)", PRESETS
)
@backbone_factory(Backbone)
def fairnas(opts: Backbone) -> SearchSpace:
    space = mobilenet_chain("fairnas", opts.options(), ops=IBN_OPS, identity_in="none", act="relu6")
    return with_named_archs(space, FAIRNAS_ARCHS)
