"""What every supernet offers, whatever the topology of its space (chain of layers, or cells).

Code above the model layer (training, search, export, analysis) talks to this interface only; the
one place that picks a class is `supernet.model.factory.build_supernet`. A cost table is not part of
it: costs are counted on stand-alone models (the cost layer sits above the model layer), by
`supernet.cost.CostTable.build(net.space, net.options.identity)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch
from torch import nn

from supernet.space.arch import Arch
from supernet.space.space import SearchSpace

if TYPE_CHECKING:
    from supernet.model.standalone import StandaloneNet
    from supernet.model.supernet import SupernetOptions, SupernetPath


@runtime_checkable
class SupernetModel(Protocol):
    """A weight-sharing supernet: the architecture is an argument, never state."""

    topology: str
    space: SearchSpace
    options: SupernetOptions

    def forward(self, x: torch.Tensor, arch: SupernetPath) -> torch.Tensor:
        """Logits of the path `arch` (an `Arch`, or a `MultiPath` for the path-dropout baseline)."""

    def run_layer(self, i: int, ops: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
        """Searchable layer `i` of the path `ops`, with its inter-choice weights (feature studies)."""

    def path_modules(self, arch: SupernetPath) -> Iterator[nn.Module]:
        """The modules the path uses, in order (BN recalibration resets exactly these)."""

    def candidate_parameters(self, layer: int, op: str) -> Iterator[nn.Parameter]:
        """All weights of candidate `op` of `layer`."""

    def export(self, arch: Arch, drop_els: bool = False) -> StandaloneNet:
        """The stand-alone model of `arch` with the supernet's weights for that path (`drop_els`: the LET
        paper's model, every identity dropped: a different function meant for retraining)."""

    def split_interchoice(self) -> dict[nn.Parameter, nn.Parameter]:
        """Inter-choice `split`: copy every op per previous choice; returns copy -> origin."""

    def sliced_masks(self, paths: Iterable[SupernetPath]) -> dict[nn.Parameter, torch.Tensor]:
        """{parameter: bool mask of the part the paths use} for weights shared by width choices; {} when
        the supernet has none (the optimizer step then runs plainly)."""
