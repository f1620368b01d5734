"""Few-shot supernets (Zhao et al., "Few-shot Neural Architecture Search", ICML 2021).

After one-shot training, the space is split on the choices of a few layers: one sub-supernet per
combination of their ops, each initialised from the one-shot weights and fine-tuned on its own part of
the space only. `FewShotSupernet` holds the parts and runs every arch on the part that contains it, so
search, ranking, BN recalibration and export use it like any supernet, the arch still an argument.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from supernet.core.errors import ConfigError, SpaceError
from supernet.model.protocol import SupernetModel
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace


def few_shot_parts(space: SearchSpace, layers: Sequence[int]) -> list[tuple[str, ...]]:
    """The op combinations of `layers` (in the space's choice order): one sub-supernet each."""
    return list(itertools.product(*(space.layers[i].choices for i in layers)))


def check_few_shot_layers(
    space: SearchSpace, layers: Sequence[int], canonical: bool, max_parts: int | None = None
) -> int:
    """A one-line ConfigError for split layers that are not ints (bools and floats included), do not exist,
    repeat, or that `supernet.canonical` may move an op into (identities move within a stage, so only a
    stage's first layer keeps its op); and, given `max_parts`, for a split into more parts than that (each
    part is a fine-tuned supernet of its own). Returns the number of parts."""
    if len(set(layers)) != len(layers) or not all(type(i) is int and 0 <= i < space.num_layers for i in layers):
        raise ConfigError(
            f"train.few_shot_layers must be distinct layer indices in 0..{space.num_layers - 1} (ints), "
            f"got {list(layers)!r:.200}"
        )
    if canonical:
        firsts = {stage[0] for stage in space.stages()}
        moved = [i for i in layers if i not in firsts]
        if moved:
            raise ConfigError(
                f"train.few_shot_layers {moved}: with supernet.canonical only a stage's first layer keeps its op "
                f"(stage starts: {sorted(firsts)})"
            )
    count = math.prod(len(space.layers[i].choices) for i in layers)
    if max_parts is not None and count > max_parts:
        raise ConfigError(
            f"train.few_shot_layers {list(layers)} split the space into {count} parts, more than "
            f"train.few_shot_max_parts={max_parts} (each part is a supernet fine-tuned on its own); "
            f"split on fewer layers or raise train.few_shot_max_parts"
        )
    return count


def part_choices(space: SearchSpace, layers: Sequence[int], ops: Sequence[str]) -> list[list[str]]:
    """The layer-wise choices of one part: `ops` fixed in `layers`, every choice elsewhere."""
    fixed = dict(zip(layers, ops))
    return [[fixed[i]] if i in fixed else list(layer.choices) for i, layer in enumerate(space.layers)]


class FewShotSupernet(nn.Module):
    """The sub-supernets of a few-shot split; `forward(x, arch)` runs `arch` on the part whose split
    layers hold its ops. Satisfies `SupernetModel` (the parts' interface, by delegation)."""

    def __init__(self, space: SearchSpace, layers: Sequence[int], parts: Mapping[tuple[str, ...], SupernetModel]):
        super().__init__()
        if not parts:
            raise ConfigError("a few-shot supernet needs at least one part")
        first = next(iter(parts.values()))
        self.space, self.options, self.topology = space, first.options, first.topology
        self.layers = tuple(layers)
        self.keys = list(parts)
        self.parts = nn.ModuleList(parts.values())
        self._index = {key: i for i, key in enumerate(self.keys)}

    def part(self, arch: Arch) -> SupernetModel:
        key = tuple(arch.ops[i] for i in self.layers)
        if key not in self._index:
            raise SpaceError(f"arch {arch} has {key} in the few-shot layers {list(self.layers)}; no part holds it")
        return self.parts[self._index[key]]

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        return self.part(arch)(x, arch)

    def path_of(self, arch: Arch) -> Arch:
        part = self.part(arch)
        return part.path_of(arch) if hasattr(part, "path_of") else arch

    def run_layer(self, i: int, ops: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
        return self.part(Arch(ops)).run_layer(i, ops, x)

    def path_modules(self, arch: Arch) -> Iterator[nn.Module]:
        return self.part(arch).path_modules(arch)

    def candidate_parameters(self, layer: int, op: str) -> Iterator[nn.Parameter]:
        for part in self.parts:
            if op in part.space.layers[layer].choices:
                yield from part.candidate_parameters(layer, op)

    def export(self, arch: Arch, drop_els: bool = False) -> Any:
        return self.part(arch).export(arch, drop_els=drop_els)

    def split_interchoice(self) -> dict[nn.Parameter, nn.Parameter]:
        raise ConfigError("a few-shot supernet is not split per previous choice (supernet.interchoice=split)")

    def sliced_masks(self, paths: Iterable[Arch]) -> dict[nn.Parameter, torch.Tensor]:
        masks: dict[nn.Parameter, torch.Tensor] = {}
        for path in paths:
            masks.update(self.part(path).sliced_masks([path]))
        return masks
