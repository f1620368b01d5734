"""SearchSpace: a frozen, serialisable description of a layer-wise search space."""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from supernet.core.errors import SpaceError
from supernet.space.arch import Arch, empty_entry, split_tokens
from supernet.space.opnames import IDENTITY

START = "start"
"""The previous choice of a layer that has none (the first layer's): inter-choice weights are keyed by it."""

BlockConfig = Mapping[str, Any]
"""One block's description (`type` plus its fields): what a space's stem, head and ops resolve to."""

# Arch notations beyond op names / indices: name -> (parse(text, space) -> op tokens or None when
# `text` is not in that notation, format(arch, space) -> text). Spaces name theirs in `arch_format`.
_ARCH_FORMATS: dict[
    str, tuple[Callable[[str, SearchSpace], Sequence[str] | None], Callable[[Arch, SearchSpace], str]]
] = {}


def register_arch_format(
    name: str, parse: Callable[[str, SearchSpace], Sequence[str] | None], format: Callable[[Arch, SearchSpace], str]
) -> None:
    _ARCH_FORMATS[name] = (parse, format)


@dataclass(frozen=True)
class LayerSpec:
    """One searchable layer: its shape and its candidate op names (in index order)."""

    in_channels: int
    out_channels: int
    stride: int
    choices: tuple[str, ...]
    act: str = "relu6"

    @property
    def keeps_shape(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels

    @property
    def non_identity(self) -> tuple[str, ...]:
        """The candidates other than the identity, in index order (empty where the identity is all it offers)."""
        return tuple(op for op in self.choices if op != IDENTITY)


@dataclass(frozen=True)
class SearchSpace:
    """Everything needed to build a supernet or any of its stand-alone models.

    `stem` and `head` are fixed block configs (the format of `supernet.ops.build_block`);
    `layers` are the searchable layers. `options` holds the factory arguments, so that
    `create_space(name, **options)` rebuilds the same space.
    """

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    stem: tuple[BlockConfig, ...]
    layers: tuple[LayerSpec, ...]
    head: tuple[BlockConfig, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    named_archs: Mapping[str, str] = field(default_factory=dict)
    compact_digits: bool = False  # also parse one digit per layer written together (`02012100`)
    # "chain": stem, one block per layer, head. Otherwise (e.g. "cells") `layers` are the choices of
    # one cell and `body` the blocks between stem and head, `{"type": "cell", ...}` where that cell sits.
    topology: str = "chain"
    body: tuple[BlockConfig, ...] = ()
    arch_format: str | None = None  # a notation registered with `register_arch_format`

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def size(self) -> int:
        """Number of architectures in the space."""
        return math.prod(len(layer.choices) for layer in self.layers)

    def parse_arch(self, text: str | Sequence[str] | Arch) -> Arch:
        """Parse a named arch, op names or the papers' index form (`0,5,0,6,...`)."""
        if isinstance(text, Arch):
            return self.validate(text)
        if isinstance(text, str):
            key = text.strip().lower()
            if key in self.named_archs:
                return self.parse_arch(self.named_archs[key])
            plain = None if self.arch_format else self._plain_op_names(text)
            if plain is not None:
                return plain
            parsed = self._arch_format()[0](text, self) if self.arch_format else None
            if parsed is not None:
                return self.parse_arch(list(parsed))
            tokens = _arch_tokens(text)
            if (
                self.compact_digits
                and len(tokens) == 1
                and len(tokens[0]) == self.num_layers > 1
                and tokens[0].isascii()
                and tokens[0].isdigit()
            ):
                tokens = list(tokens[0])
        else:
            tokens = [str(t) for t in text]
        if len(tokens) != self.num_layers:
            raise SpaceError(
                f"arch '{_short(text)}' has {len(tokens)} layers, space '{self.name}' has "
                f"{self.num_layers} (give one op name or index per layer, or one of: "
                f"{', '.join(sorted(self.named_archs)) or 'no named archs'})"
            )
        return Arch(tuple(self._resolve(i, tok) for i, tok in enumerate(tokens)))

    def _plain_op_names(self, text: str) -> Arch | None:
        """`text` as the arch it spells when it is exactly one op name per layer joined by commas (what
        `Arch.to_string` writes), else None: the common case without the general parser's regexes (a table of
        117,649 archs loads in half the time). Gives what the general parser gives (digits are indices there)."""
        ops = tuple(text.split(","))
        if len(ops) != self.num_layers:
            return None
        for op, layer in zip(ops, self.layers):
            if op not in layer.choices or op.isdigit():
                return None
        return Arch(ops)

    def format_arch(self, arch: Arch) -> str:
        """An arch in the space's own notation (`arch_format`), else `arch.to_string()`."""
        return self._arch_format()[1](self.validate(arch), self) if self.arch_format else arch.to_string()

    def _arch_format(self):
        if self.arch_format not in _ARCH_FORMATS:
            raise SpaceError(f"space '{self.name}': unknown arch format {self.arch_format!r}")
        return _ARCH_FORMATS[self.arch_format]

    def _resolve(self, layer: int, token: str) -> str:
        choices = self.layers[layer].choices
        if token.isdigit():
            index = int(token)
            if index < len(choices):
                return choices[index]
        elif token in choices:
            return token
        allowed = ", ".join(f"{i}={c}" for i, c in enumerate(choices))
        raise SpaceError(f"layer {layer}: '{_short(token)}' is not a choice; allowed: {allowed}")

    def validate(self, arch: Arch) -> Arch:
        if len(arch) != self.num_layers:
            raise SpaceError(f"arch has {len(arch)} layers, space '{self.name}' has {self.num_layers}")
        for i, op in enumerate(arch.ops):
            self._resolve(i, op)
        return arch

    def contains(self, arch: Arch) -> bool:
        """Whether every op of `arch` is one of its layer's choices here (a pruned space holds fewer)."""
        return len(arch) == self.num_layers and all(op in layer.choices for layer, op in zip(self.layers, arch.ops))

    def indices(self, arch: Arch) -> tuple[int, ...]:
        """The papers' index form of an arch."""
        return tuple(layer.choices.index(op) for layer, op in zip(self.layers, arch.ops))

    def from_indices(self, indices: Sequence[int]) -> Arch:
        return Arch(tuple(layer.choices[i] for layer, i in zip(self.layers, indices)))

    def sample(self, rng: random.Random) -> Arch:
        """Uniform sample: each layer's op drawn independently and uniformly (SPOS eq. 8)."""
        return Arch(tuple(rng.choice(layer.choices) for layer in self.layers))

    def stages(self) -> list[range]:
        """The layers of each stage: a stage starts at each layer that changes the shape."""
        starts = [i for i, layer in enumerate(self.layers) if i == 0 or not layer.keeps_shape]
        return [range(a, b) for a, b in zip(starts, starts[1:] + [self.num_layers])]

    def canonical(self, arch: Arch) -> Arch:
        """The network `arch` is, in one spelling: in each stage, the identities after the stage's first
        layer moved to the stage's end. Shape-keeping identities are no-ops wherever they sit (with
        `supernet.identity: skip`), so all spellings of one network compute the same function; NAS-Bench-Macro
        trained this form, and `supernet.canonical` trains and scores it (once-for-all's elastic depth)."""
        ops: list[str] = []
        for stage in self.stages():
            first, rest = arch.ops[stage[0]], [arch.ops[i] for i in stage[1:]]
            ops += [first, *[o for o in rest if o != IDENTITY], *[o for o in rest if o == IDENTITY]]
        return Arch(tuple(ops))

    def canonical_outside(self) -> Arch | None:
        """An arch of the space whose canonical form is not in it; None when the space is closed under
        `canonical` (every zoo space; a pruned one need not be: layer 3 = {id, e3k3}, layer 4 = {e6k5}
        moves e6k5 into layer 3). Exact, without enumerating: per stage, an op of a later layer lands in an
        earlier one when identities can fill the layers between, and the last layers must offer an identity
        where the fewest possible non-identities leave them."""
        base = [layer.choices[0] for layer in self.layers]
        for stage in self.stages():
            rest = list(stage)[1:]
            found = self._stage_outside(rest, base)
            if found is not None:
                return found
        return None

    def _stage_outside(self, rest: list[int], base: list[str]) -> Arch | None:
        choices = [self.layers[k].choices for k in rest]
        ops = [list(self.layers[k].non_identity) for k in rest]
        has_id = [IDENTITY in layer for layer in choices]

        def arch(moved: int, upto: int, tail: dict[int, str]) -> Arch:
            """Non-identities where forced and in the first `moved` free layers before `upto`, `tail` after."""
            out, free = list(base), 0
            for p, k in enumerate(rest[:upto]):
                use = not has_id[p] or (bool(ops[p]) and free < moved)
                free += has_id[p] and use
                out[k] = ops[p][0] if use else IDENTITY
            for p, k in enumerate(rest[upto:], upto):
                out[k] = tail.get(p, IDENTITY if has_id[p] else choices[p][0])
            return Arch(tuple(out))

        for j in range(len(rest)):
            forced = sum(not h for h in has_id[:j])
            flexible = sum(bool(o) and h for o, h in zip(ops[:j], has_id[:j]))
            for i in range(forced, min(forced + flexible, j - 1) + 1):
                for op in ops[j]:
                    if op not in choices[i]:
                        return arch(i - forced, j, {j: op})
        fewest = sum(not h for h in has_id)
        if not all(has_id[fewest:]):
            return arch(0, len(rest), {})
        return None

    def restrict(self, choices: Sequence[Sequence[str]]) -> SearchSpace:
        """A layer-wise sub-space with fewer candidates per layer (e.g. after pruning)."""
        layers = []
        for i, (layer, keep) in enumerate(zip(self.layers, choices, strict=True)):
            unknown = [c for c in keep if c not in layer.choices]
            if unknown or not keep:
                raise SpaceError(f"layer {i}: cannot keep {list(keep)}; allowed: {list(layer.choices)}")
            layers.append(replace(layer, choices=tuple(c for c in layer.choices if c in keep)))
        return replace(self, layers=tuple(layers))

    def to_dict(self) -> dict[str, Any]:
        # (chain spaces leave these out, so that their fingerprints stay what they were)
        extra = {} if self.topology == "chain" else {"topology": self.topology, "body": [dict(b) for b in self.body]}
        return {
            **extra,
            "name": self.name,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "stem": [dict(b) for b in self.stem],
            "layers": [asdict(layer) for layer in self.layers],
            "head": [dict(b) for b in self.head],
            "options": dict(self.options),
        }

    def fingerprint(self) -> str:
        """A stable hash of the space's structure (used to match checkpoints to spaces)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _arch_tokens(text: str) -> list[str]:
    """The entries of an arch string; an empty one (`e3k3,,e3k3`) is refused naming its layer."""
    layer = empty_entry(text)
    if layer is not None:
        raise SpaceError(
            f"arch '{_short(text)}' has an empty entry at layer {layer} (two commas with nothing between, or "
            f"a comma at either end); give one op name or index per layer"
        )
    return split_tokens(text)


def _short(text: object, limit: int = 60) -> str:
    """User text made safe for a one-line message: escaped, and cut to `limit` characters."""
    s = text if isinstance(text, str) else ",".join(map(str, text))  # type: ignore[arg-type]
    s = s.encode("unicode_escape").decode("ascii")
    return s if len(s) <= limit else s[: limit - 3] + "..."
