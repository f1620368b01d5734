"""Stand-alone networks built from a plain JSON-able config, with no supernet code involved."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from supernet.ops.blocks import build_block
from supernet.ops.standalone import CONFIG_FORMAT


class StandaloneNet(nn.Sequential):
    """A sequential network of static blocks (identity blocks are dropped)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        if config.get("format") != CONFIG_FORMAT:
            raise ValueError(f"not a stand-alone config: format {config.get('format')!r}, expected {CONFIG_FORMAT!r}")
        super().__init__(*(build_block(b) for b in config["blocks"] if b["type"] != "identity"))
        self.config = dict(config)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.config["input_shape"])

    def example_input(self, batch: int = 1) -> torch.Tensor:
        return torch.zeros(batch, *self.input_shape)


def copy_block_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy a supernet block's state into a stand-alone block of the same type.

    Only BatchNorm affine parameters may be missing in the source (a supernet trained
    with affine-free BN); they keep their identity initialisation (weight 1, bias 0).
    """
    missing, unexpected = target.load_state_dict(source.state_dict(), strict=False)
    bad = [k for k in missing if not _is_bn_affine(target, k)] + list(unexpected)
    if bad:
        raise RuntimeError(f"cannot copy weights into {type(target).__name__}: mismatched keys {bad}")


def _is_bn_affine(module: nn.Module, key: str) -> bool:
    owner, _, leaf = key.rpartition(".")
    sub = module.get_submodule(owner) if owner else module
    return isinstance(sub, nn.modules.batchnorm._BatchNorm) and leaf in ("weight", "bias")
