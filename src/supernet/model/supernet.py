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
    bn_affine: BatchNorm with learnable affine parameters. Default True; the official SPOS
        supernet uses affine-free BN (set False for that convention). Stand-alone models always
        get affine BN (initialised to 1 and 0 where the supernet had none).
    zero_init_residual: residual candidates start as the identity (last BN scale zero; needs
        bn_affine). Default True: without it, the small CPU supernets here did not learn at all
        (sampled-path accuracy stayed at chance for 1,100 steps), because every randomly chosen
        residual branch adds unit-variance noise that is uncorrelated across candidates.
    """

    identity: str = "skip"
    bn_affine: bool = True
    zero_init_residual: bool = True

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
        if options.zero_init_residual:
            for module in self.modules():
                if hasattr(module, "zero_init_residual"):
                    module.zero_init_residual()

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
