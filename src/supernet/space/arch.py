"""Architecture values: one chosen op name per searchable layer of a space."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEPARATORS = re.compile(r"[\s,|]+")


@dataclass(frozen=True, order=True)
class Arch:
    """An immutable, hashable architecture: the op chosen in each searchable layer, by name.

    Naming ops (not indices) keeps an Arch valid when a space is pruned layer-wise.
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self):
        return iter(self.ops)

    def __getitem__(self, i: int) -> str:
        return self.ops[i]

    def __str__(self) -> str:
        return self.to_string()

    def to_string(self) -> str:
        """The canonical short form: op names joined by commas."""
        return ",".join(self.ops)

    def replace(self, layer: int, op: str) -> Arch:
        ops = list(self.ops)
        ops[layer] = op
        return Arch(tuple(ops))


def split_tokens(text: str) -> list[str]:
    """Split an arch string on commas, whitespace or stage bars `|`."""
    return [t for t in _SEPARATORS.split(text.strip()) if t]


def empty_entry(text: str) -> int | None:
    """The 0-based layer of the first empty comma-separated entry (`e3k3,,e3k3`: 1; a leading or trailing
    comma counts), or None: splitting would drop it silently and shift every later op a layer."""
    pieces = text.split(",")
    if len(pieces) < 2:
        return None
    before = 0
    for piece in pieces:
        tokens = split_tokens(piece)
        if not tokens:
            return before
        before += len(tokens)
    return None
