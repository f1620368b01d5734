"""Candidate op names of searchable layers, mapped to block configs.

An op name is resolved against the layer it sits in (its widths, stride, activation),
and against the supernet's identity handling (`skip` or `els`).
"""
from __future__ import annotations

import re
from typing import Callable

from supernet.ops.blocks import BlockConfig
from supernet.space.space import LayerSpec

IDENTITY = "id"
IDENTITY_MODES = ("skip", "els")

_Resolver = Callable[[re.Match[str], LayerSpec, str], BlockConfig]
_PATTERNS: list[tuple[re.Pattern[str], _Resolver]] = []


def register_op(pattern: str, resolver: _Resolver) -> None:
    _PATTERNS.append((re.compile(pattern), resolver))


def _ibn(m: re.Match[str], layer: LayerSpec, identity: str) -> BlockConfig:
    return {"type": "ibn", "in": layer.in_channels, "out": layer.out_channels, "stride": layer.stride,
            "expansion": int(m["e"]), "kernel": int(m["k"]), "act": layer.act, "se": bool(m["se"])}


def _identity(m: re.Match[str], layer: LayerSpec, identity: str) -> BlockConfig:
    if identity == "els":
        return {"type": "els", "in": layer.in_channels, "out": layer.out_channels, "stride": layer.stride}
    if layer.keeps_shape:
        return {"type": "identity"}
    # A skip cannot change shape: where it must, it is a 1x1 projection with BN (as in NAS-Bench-Macro).
    return {"type": "conv", "in": layer.in_channels, "out": layer.out_channels, "kernel": 1,
            "stride": layer.stride, "act": None}


register_op(r"^e(?P<e>\d+)k(?P<k>\d+)(?P<se>_se)?$", _ibn)
register_op(r"^id$", _identity)


def candidate_config(op: str, layer: LayerSpec, identity: str = "skip") -> BlockConfig:
    """The block config of candidate `op` in `layer` as trained in the supernet."""
    if identity not in IDENTITY_MODES:
        raise ValueError(f"identity must be one of {IDENTITY_MODES}, got {identity!r}")
    for pattern, resolver in _PATTERNS:
        m = pattern.match(op)
        if m:
            return resolver(m, layer, identity)
    raise ValueError(f"no block for op name {op!r}")


def exported_config(op: str, layer: LayerSpec, identity: str = "skip") -> BlockConfig:
    """The block config in the stand-alone model: an identity that keeps the shape is removed
    (SCARLET folds ELS away; a skip is nothing), so the stand-alone block is a plain identity."""
    if op == IDENTITY and layer.keeps_shape:
        return {"type": "identity"}
    return candidate_config(op, layer, identity)
