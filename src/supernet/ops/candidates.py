"""Candidate op names of searchable layers, mapped to block configs.

An op name is resolved against the layer it sits in (its widths, stride, activation),
and against the supernet's identity handling (`skip` or `els`).

Width choices are written `<op>@<scale>` (`choice_3@0.4`, `w2a4@1.5`). Ops whose resolver marks
them with `shared_choice` share one supernet block (built at the largest width) and select their
slice with forward keyword arguments (`supernet_candidate`); their stand-alone block is built at
their own width.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

from supernet.core.errors import SupernetError
from supernet.core.registry import Registry
from supernet.ops.blocks import BlockConfig
from supernet.space.opnames import IDENTITY, IDENTITY_MODES, scale_name, split_scale  # noqa: F401  (re-exported)
from supernet.space.space import LayerSpec

OpResolver = Callable[[re.Match[str], LayerSpec, str], BlockConfig]
"""`resolver(match, layer, identity) -> block config` of an op name that matched its pattern."""
OP_PATTERNS: Registry[tuple[re.Pattern[str], OpResolver]] = Registry("op pattern", ValueError)
"""Regular expression -> resolver, tried in registration order; filled by the `supernet.ops` modules."""


def register_op(pattern: str, resolver: OpResolver) -> None:
    """Resolve the op names `pattern` matches with `resolver`. Patterns are tried in registration order, so
    one that matches a name an earlier pattern already resolves would never be used for it: refused."""
    compiled = re.compile(pattern)
    _refuse_overlap(compiled)
    OP_PATTERNS.register(pattern, (compiled, resolver))


def _refuse_overlap(pattern: re.Pattern[str]) -> None:
    for name in sorted(_known_op_names()):
        if not pattern.match(name):
            continue
        owner = next((p for _, (p, _r) in OP_PATTERNS.items() if p.match(name)), None)
        if owner is not None:
            raise ValueError(
                f"op pattern {pattern.pattern!r} matches the op name {name!r}, which the registered pattern "
                f"{owner.pattern!r} already resolves (the first match wins, so yours would be ignored for it); "
                f"give your ops names no registered pattern matches"
            )


_NAMES_CACHE: dict[tuple[str, ...], frozenset[str]] = {}


def _known_op_names() -> frozenset[str]:
    """The op names of every registered space (its defaults and each preset; computed once per set of
    registered spaces); a space that cannot be built without options of its own is skipped."""
    from supernet.space.registry import SPACES

    key = tuple(SPACES.names())
    if key not in _NAMES_CACHE:
        _NAMES_CACHE[key] = frozenset(_space_op_names(key))
    return _NAMES_CACHE[key]


def _space_op_names(spaces: tuple[str, ...]) -> set[str]:
    from supernet.space.registry import SPACES, create_space

    names: set[str] = set()
    for entry in [SPACES.get(n) for n in spaces]:
        for preset in [None, *entry.presets]:
            try:
                space = create_space(entry.name, preset=preset)
            except (SupernetError, TypeError, ValueError):
                continue
            names.update(op for layer in space.layers for op in layer.choices)
    return names


def _ibn(m: re.Match[str], layer: LayerSpec, identity: str) -> BlockConfig:
    return {
        "type": "ibn",
        "in": layer.in_channels,
        "out": layer.out_channels,
        "stride": layer.stride,
        "expansion": int(m["e"]),
        "kernel": int(m["k"]),
        "act": layer.act,
        "se": bool(m["se"]),
    }


def _identity(m: re.Match[str], layer: LayerSpec, identity: str) -> BlockConfig:
    if identity == "els":
        return {"type": "els", "in": layer.in_channels, "out": layer.out_channels, "stride": layer.stride}
    if layer.keeps_shape:
        return {"type": "identity"}
    # A skip cannot change shape: where it must, it is a 1x1 projection with BN (as in NAS-Bench-Macro).
    return {
        "type": "conv",
        "in": layer.in_channels,
        "out": layer.out_channels,
        "kernel": 1,
        "stride": layer.stride,
        "act": None,
    }


register_op(r"^e(?P<e>\d+)k(?P<k>\d+)(?P<se>_se)?$", _ibn)
register_op(r"^id$", _identity)


_SHARED = "shared"


class SupernetCandidate(NamedTuple):
    """How a supernet runs an op: module `key` of its layer (built from `config`) called with `select`."""

    key: str
    config: BlockConfig
    select: dict[str, Any]


def scaled_width(base: int, scale: float) -> int:
    """A width times a scale, rounded half up, at least 1."""
    return max(1, int(base * scale + 0.5))


def shared_choice(config: BlockConfig, key: str, widest: BlockConfig, select: dict[str, Any]) -> dict[str, Any]:
    """Mark `config` (the op's own block) as run in a supernet by the shared block `widest`, stored
    under `key` in its layer and called with keyword arguments `select`."""
    return {**config, _SHARED: {"key": key, "block": dict(widest), "select": dict(select)}}


def _resolve(op: str, layer: LayerSpec, identity: str) -> BlockConfig:
    if identity not in IDENTITY_MODES:
        raise ValueError(f"identity must be one of {IDENTITY_MODES}, got {identity!r}")
    own = getattr(layer, "resolve_op", None)  # a layer that brings its own ops (`supernet.ops.modules`)
    if own is not None and (config := own(op, identity)) is not None:
        return config
    for _, (pattern, resolver) in OP_PATTERNS.items():
        m = pattern.match(op)
        if m:
            return resolver(m, layer, identity)
    raise ValueError(f"no block for op name {op!r}")


def candidate_config(op: str, layer: LayerSpec, identity: str = "skip") -> BlockConfig:
    """The block config of candidate `op` in `layer` on its own (a width choice at its width)."""
    return {k: v for k, v in _resolve(op, layer, identity).items() if k != _SHARED}


def supernet_candidate(op: str, layer: LayerSpec, identity: str = "skip") -> SupernetCandidate:
    """The supernet's module for `op`: its own (key `op`), or the shared block of a width choice."""
    config = _resolve(op, layer, identity)
    shared = config.get(_SHARED)
    if shared is None:
        return SupernetCandidate(op, config, {})
    return SupernetCandidate(shared["key"], shared["block"], dict(shared["select"]))


def exported_config(op: str, layer: LayerSpec, identity: str = "skip") -> BlockConfig:
    """The block config in the stand-alone model: an identity that keeps the shape is removed
    (SCARLET folds ELS away; a skip is nothing), so the stand-alone block is a plain identity."""
    if op == IDENTITY and layer.keeps_shape:
        return {"type": "identity"}
    return candidate_config(op, layer, identity)
