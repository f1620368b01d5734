"""Export an arch of a trained supernet as a stand-alone model with inherited weights."""

from __future__ import annotations

from supernet.model.protocol import SupernetModel
from supernet.model.standalone import StandaloneNet, copy_block_weights  # noqa: F401  (re-exported)
from supernet.ops.standalone import standalone_config  # noqa: F401  (re-exported)
from supernet.space.arch import Arch


def export_model(supernet: SupernetModel, arch: Arch, drop_els: bool = False) -> StandaloneNet:
    """Stand-alone model for `arch` carrying the supernet's weights for that path (`supernet.export`).

    `drop_els` builds the LET paper's model (every ELS identity dropped, `let_standalone_config`: a
    different function, meant for retraining); by default they are folded or kept, so the model computes
    what the supernet path does.
    """
    return supernet.export(arch, drop_els=drop_els)
