"""Weights a supernet of a smaller space inherits from the supernet it came from.

A PAD-NAS pruning stage (`supernet prune`) and a few-shot part (`train.few_shot_layers`) build the
supernet of a restricted space (`SearchSpace.restrict`) and start it from the larger one's weights.
Every entry of the smaller supernet has the same name in the larger one. Most have the same shape; the
shared block of a width choice is built at the widest width its layer still offers, so once the widest
choice is gone it is narrower, and since every narrower choice runs on the leading slice of the shared
block (`supernet.ops.slicing`, SPOS Fig. 3b), its weights are the leading slice of the wider ones: each
surviving choice computes exactly what it computed before.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from supernet.core.errors import CheckpointError


def inherit_state(
    source: Mapping[str, torch.Tensor], target: nn.Module, what: str = "restricted supernet"
) -> dict[str, torch.Tensor]:
    """`target`'s state dict filled from `source` (the larger supernet's state dict): entries of the same
    shape copied, narrower ones the leading slice (a width choice whose widest choice went). Raises a
    one-line CheckpointError naming the first entry (`what`: how the message calls `target`) that has no
    counterpart of the same name and rank, at least as wide in every dimension."""
    state = {}
    for name, value in target.state_dict().items():
        parent = source.get(name)
        if parent is None or not _fits(value.shape, parent.shape):
            raise CheckpointError(f"{what} entry {name!r} has no counterpart in the supernet it inherits from")
        state[name] = parent.detach()[tuple(slice(0, n) for n in value.shape)].clone()
    return state


def _fits(shape: torch.Size, parent: torch.Size) -> bool:
    return len(shape) == len(parent) and all(n <= p for n, p in zip(shape, parent))
