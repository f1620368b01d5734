"""Registry of search-space factories: `create_space(name, **options)`, `list_spaces()`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from supernet.core.errors import SpaceError
from supernet.core.registry import Registry
from supernet.space.space import SearchSpace

SpaceFactory = Callable[..., SearchSpace]


@dataclass(frozen=True)
class SpaceEntry:
    name: str
    factory: SpaceFactory
    description: str
    presets: dict[str, dict[str, Any]]


SPACES: Registry[SpaceEntry] = Registry("search space", SpaceError)
"""Filled by `supernet.space.zoo`, which `supernet.space` imports: any import of the package registers the zoo."""


def register_space(name: str, description: str, presets: dict[str, dict[str, Any]] | None = None):
    """Decorator registering a factory `f(**options) -> SearchSpace` under `name`."""

    def wrap(factory: SpaceFactory) -> SpaceFactory:
        SPACES.register(name, SpaceEntry(name, factory, description, presets or {}))
        return factory

    return wrap


def list_spaces() -> list[SpaceEntry]:
    return [SPACES.get(name) for name in SPACES.names()]


def space_options(name: str) -> dict[str, Any]:
    """The options of a space's factory with their defaults."""
    entry = SPACES.get(name)
    sig = inspect.signature(entry.factory)
    return {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}


def create_space(name: str, preset: str | None = None, **options: Any) -> SearchSpace:
    """Build a registered space; `preset` supplies defaults that explicit options override."""
    entry = SPACES.get(name)
    merged: dict[str, Any] = {}
    if preset is not None:
        if preset not in entry.presets:
            raise SpaceError(f"space '{name}' has no preset '{preset}'; presets: {sorted(entry.presets)}")
        merged.update(entry.presets[preset])
    merged.update({k: v for k, v in options.items() if v is not None})
    allowed = space_options(name)
    unknown = sorted(set(merged) - set(allowed))
    if unknown:
        raise SpaceError(f"space '{name}' has no option {unknown[0]!r}; options: {sorted(allowed)}")
    return entry.factory(**merged)
