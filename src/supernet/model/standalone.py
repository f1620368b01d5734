"""Stand-alone networks built from a plain JSON-able config, with no supernet code involved."""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from supernet.ops.blocks import build_block

CONFIG_FORMAT = "supernet.standalone/1"


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


def build_standalone(config: Mapping[str, Any]) -> StandaloneNet:
    return StandaloneNet(config)
