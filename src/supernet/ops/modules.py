"""Search spaces over your own `nn.Module` classes: a choice of module factories per layer (NNI's `LayerChoice`).

A candidate is an `nn.Module` subclass called as `cls(in_channels, out_channels, stride, **kwargs)`, or a
`functools.partial` of one with keyword arguments that are JSON values. Its block config records the
class by import path (`{"type": "module", "factory": "package.module:Class", "kwargs": {...}}`), so a model
exported from such a space rebuilds in a fresh process that has imported that module (or trusts it:
`load_exported(..., trust_modules=[...])`), with no registration; otherwise building fails with one line naming it.

Such a space is an ordinary chain `SearchSpace` (stem conv, one chosen module per layer, pooling and a
linear head): the chain supernet runs it, the cost table counts its MACs and parameters on the modules
themselves, and its archs are op names (a candidate's name, e.g. `conv_kernel5`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from torch import nn

from supernet.core.errors import SpaceError
from supernet.ops.blocks import register_block
from supernet.space.space import BlockConfig, LayerSpec, SearchSpace

MODULE_BLOCK = "module"
ModuleFactory = Callable[..., nn.Module]
"""An `nn.Module` subclass (or a `functools.partial` of one): `factory(in_channels, out_channels, stride)`."""
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_MODULE_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class ModuleOp:
    """One candidate of a layer: its op name, its class's import path and its keyword arguments (JSON)."""

    name: str
    factory: str
    kwargs: str = "{}"


@dataclass(frozen=True)
class ModuleLayer(LayerSpec):
    """A searchable layer whose candidates include user modules; other choices (`id`, `e3k3`...) resolve as usual."""

    modules: tuple[ModuleOp, ...] = ()

    def resolve_op(self, op: str, identity: str) -> BlockConfig | None:
        """The block config of `op` when it is one of this layer's modules, else None."""
        for candidate in self.modules:
            if candidate.name == op:
                return {
                    "type": MODULE_BLOCK,
                    "factory": candidate.factory,
                    "kwargs": json.loads(candidate.kwargs),
                    "in": self.in_channels,
                    "out": self.out_channels,
                    "stride": self.stride,
                }
        return None


@dataclass(frozen=True)
class LayerChoice:
    """One searchable layer of `module_space`: its candidates and its output shape.

    `candidates`: factories (op names derived from the class name and keyword arguments) or a mapping
    op name -> factory; a string is a built-in op (`id`: a skip, `e3k3`: an inverted bottleneck...).
    `channels`: output channels (None: the input's); `stride`: the layer's stride.
    """

    candidates: Sequence[ModuleFactory | str] | Mapping[str, ModuleFactory | str]
    channels: int | None = None
    stride: int = 1


def module_space(
    layers: Sequence[LayerChoice],
    input_shape: Sequence[int],
    num_classes: int,
    stem_channels: int = 16,
    stem_stride: int = 1,
    name: str = "modules",
) -> SearchSpace:
    """A chain space over your own modules: a 3x3 conv stem (BN, ReLU) to `stem_channels`, the layers
    (each takes the previous one's output channels), global average pooling and a linear classifier."""
    if not layers:
        raise SpaceError("module_space needs at least one LayerChoice")
    channels, _, _ = (int(v) for v in input_shape)
    stem = ({"type": "conv", "in": channels, "out": stem_channels, "kernel": 3, "stride": stem_stride, "act": "relu"},)
    specs, cin = [], stem_channels
    for index, layer in enumerate(layers):
        cout = layer.channels if layer.channels is not None else cin
        specs.append(_layer(index, layer, cin, cout))
        cin = cout
    head = ({"type": "pool"}, {"type": "linear", "in": cin, "out": num_classes})
    options = {"stem_channels": stem_channels, "stem_stride": stem_stride}
    return SearchSpace(name, tuple(int(v) for v in input_shape), num_classes, stem, tuple(specs), head, options)


def _layer(index: int, layer: LayerChoice, cin: int, cout: int) -> ModuleLayer:
    items = layer.candidates.items() if isinstance(layer.candidates, Mapping) else _named(layer.candidates)
    choices, modules = [], []
    for op, candidate in items:
        if not isinstance(op, str) or not _NAME.match(op):
            raise SpaceError(
                f"layer {index}: op name {op!r} must be letters, digits, '_', '.' or '-', not first a digit"
            )
        if op in choices:
            raise SpaceError(f"layer {index}: two candidates are named {op!r}; give them names with a mapping")
        if not isinstance(candidate, str):
            path, kwargs = factory_path(candidate)
            modules.append(ModuleOp(op, path, json.dumps(kwargs, sort_keys=True)))
        choices.append(op)
    if not choices:
        raise SpaceError(f"layer {index}: a LayerChoice needs at least one candidate")
    return ModuleLayer(cin, cout, layer.stride, tuple(choices), act="relu", modules=tuple(modules))


def _named(candidates: Sequence[ModuleFactory | str]) -> list[tuple[str, ModuleFactory | str]]:
    """Op names for a list: a string names itself, a class `Conv` is `conv`, `partial(Conv, kernel=5)` is
    `conv_kernel5`."""
    out = []
    for candidate in candidates:
        if isinstance(candidate, str):
            out.append((candidate, candidate))
            continue
        func = candidate.func if isinstance(candidate, functools.partial) else candidate
        keywords = candidate.keywords if isinstance(candidate, functools.partial) else {}
        suffix = "".join(f"_{k}{v}" for k, v in sorted(keywords.items()))
        out.append(
            (re.sub(r"[^A-Za-z0-9_.-]", "", f"{getattr(func, '__name__', 'module').lower()}{suffix}"), candidate)
        )
    return out


def factory_path(factory: ModuleFactory) -> tuple[str, dict[str, Any]]:
    """(`module:qualname`, keyword arguments) of a candidate: what its block config records."""
    kwargs: dict[str, Any] = {}
    if isinstance(factory, functools.partial):
        if factory.args:
            raise SpaceError(f"candidate {factory!r}: give its arguments as keywords (partial(Cls, kernel=5))")
        kwargs, factory = dict(factory.keywords), factory.func
    if not (isinstance(factory, type) and issubclass(factory, nn.Module)):
        raise SpaceError(f"candidate {factory!r} is not an nn.Module subclass (or a functools.partial of one)")
    if "<locals>" in factory.__qualname__:
        raise SpaceError(f"candidate {factory.__qualname__} is defined inside a function; define it at module level")
    try:
        json.dumps(kwargs)
    except TypeError as e:
        raise SpaceError(f"candidate {factory.__qualname__}: keyword arguments must be JSON values ({e})") from None
    return f"{factory.__module__}:{factory.__qualname__}", kwargs


_TRUSTED: ContextVar[frozenset[str]] = ContextVar("trusted_modules", default=frozenset())


@contextlib.contextmanager
def trusted_modules(names: Iterable[str]) -> Iterator[None]:
    """Within the block, `load_factory` may also import these modules (and their submodules): the explicit
    opt-in of `load_exported(..., trust_modules=[...])` for a module this process has not imported yet."""
    names = [str(n) for n in names]
    bad = [n for n in names if not _MODULE_PATH.match(n)]
    if bad:
        raise SpaceError(f"trust_modules: {bad[0][:80]!r} is not a module name (package.module)")
    token = _TRUSTED.set(_TRUSTED.get() | frozenset(names))
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def _is_trusted(module_name: str) -> bool:
    trusted = _TRUSTED.get()
    parts = module_name.split(".")
    return any(".".join(parts[:k]) in trusted for k in range(1, len(parts) + 1))


def load_factory(path: str) -> type[nn.Module]:
    """The class a block config names (`module:qualname`), looked up by module name (never from a file).

    A block config may come from someone else's `model.json`, and importing a module runs its top-level code
    (the current folder is on the import path): only a module this process has already imported is used,
    or one named in `trusted_modules` (SECURITY.md). Only `nn.Module` subclasses are accepted, found as
    plain attributes (no module `__getattr__` runs), so such a config never calls an arbitrary function."""
    module_name, _, qualname = str(path).partition(":")
    if not _MODULE_PATH.match(module_name) or not qualname:
        raise SpaceError(f"module block: factory {str(path)[:120]!r} is not 'package.module:Class'")
    target: Any = sys.modules.get(module_name)
    if target is None:
        target = _import_trusted(str(path), module_name)
    for part in qualname.split("."):
        found = inspect.getattr_static(target, part, _MISSING)
        if found is _MISSING:
            where = " (a script run as __main__: define the class in an importable module)" * (
                module_name == "__main__"
            )
            raise SpaceError(f"module block {path}: module {module_name!r} has no {qualname!r}{where}")
        target = found
    if not (isinstance(target, type) and issubclass(target, nn.Module)):
        raise SpaceError(f"module block {path}: not an nn.Module subclass; refused")
    return target


_MISSING = object()


def _import_trusted(path: str, module_name: str) -> Any:
    if not _is_trusted(module_name):
        raise SpaceError(
            f"module block {path[:120]}: module {module_name!r} is not imported by this process and not trusted; "
            f"import it yourself first or pass trust_modules=[{module_name!r}] (importing runs its code)"
        )
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise SpaceError(
            f"module block {path}: no module named {e.name!r}; make {module_name!r} importable "
            f"(install it or add its folder to PYTHONPATH) before loading this model"
        ) from None


def _module_block(config: BlockConfig, bn_affine: bool) -> nn.Module:
    """Build a user module; `bn_affine` does not reach it (its BatchNorms are its own)."""
    cls = load_factory(config["factory"])
    kwargs = dict(config.get("kwargs") or {})
    try:
        return cls(config["in"], config["out"], config.get("stride", 1), **kwargs)
    except TypeError as e:
        raise SpaceError(
            f"module block {config['factory']}: {cls.__name__}(in_channels, out_channels, stride"
            f"{''.join(f', {k}=...' for k in kwargs)}) failed: {str(e).splitlines()[0] if str(e) else 'TypeError'}"
        ) from None


register_block(MODULE_BLOCK, _module_block)
