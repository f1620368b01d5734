"""The weight-sharing supernet: `forward(x, arch)` runs exactly the chosen path."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator

import torch
from torch import nn

from supernet.errors import ConfigError
from supernet.ops.blocks import build_block
from supernet.ops.candidates import IDENTITY_MODES, candidate_config
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace


@dataclass(frozen=True)
class SupernetOptions:
    """How the supernet is built.

    identity: `skip` (a plain skip) or `els` (SCARLET's learnable 1x1 stabilizer).
    bn_affine: BatchNorm with learnable affine parameters. Default False, the official SPOS
        supernet convention; stand-alone models always get affine BN (initialised to 1 and 0).
    """

    identity: str = "skip"
    bn_affine: bool = False

    def __post_init__(self) -> None:
        if self.identity not in IDENTITY_MODES:
            raise ConfigError(f"supernet.identity must be one of {IDENTITY_MODES}, got {self.identity!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class Supernet(nn.Module):
    """All candidates of all layers; the architecture is an argument of `forward`, never state."""

    def __init__(self, space: SearchSpace, options: SupernetOptions = SupernetOptions()) -> None:
        super().__init__()
        self.space = space
        self.options = options
        affine = options.bn_affine
        self.stem = nn.Sequential(*(build_block(c, affine) for c in space.stem))
        self.choices = nn.ModuleList(
            nn.ModuleDict({op: build_block(candidate_config(op, layer, options.identity), affine)
                           for op in layer.choices})
            for layer in space.layers
        )
        self.head = nn.Sequential(*(build_block(c, affine) for c in space.head))

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        x = self.stem(x)
        for layer, op in zip(self.choices, arch.ops, strict=True):
            x = layer[op](x)
        return self.head(x)

    def path_modules(self, arch: Arch) -> Iterator[nn.Module]:
        """The modules an arch uses, in order: stem blocks, one candidate per layer, head blocks."""
        yield from self.stem
        for layer, op in zip(self.choices, arch.ops, strict=True):
            yield layer[op]
        yield from self.head

    def candidate_parameters(self, layer: int, op: str) -> Iterator[nn.Parameter]:
        return self.choices[layer][op].parameters()
