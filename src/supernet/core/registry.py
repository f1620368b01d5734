"""One registry shape for everything looked up by name: spaces, strategies, samplers, datasets, blocks, ops.

A `Registry[T]` maps names to values (a factory, a class, a spec). Values are registered where they
are defined, with the decorator or the call form; the package that owns the registry imports its
plug-in modules in its `__init__`, so importing any of its modules fills the registry:

    SAMPLERS: Registry[SamplerFactory] = Registry("sampler", ConfigError, hint="train.sampler")

    @SAMPLERS.register("uniform")
    def _uniform(space, settings): ...

    SAMPLERS.get("uniform")        # or a one-line error: unknown sampler 'x' (train.sampler); known: ...
    SAMPLERS.names()               # sorted; CLI `choices` come from here

Registering a name twice is an error (two plug-ins claiming one name is a bug); pass
`overwrite=True` to replace an entry on purpose. Modelled on timm's `timm/models/_registry.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, overload

from supernet.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> values of one kind, in registration order."""

    def __init__(self, kind: str, error: type[Exception] = ConfigError, hint: str = "") -> None:
        self.kind = kind
        self.error = error
        self.hint = hint
        self._entries: dict[str, T] = {}

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, value: T, *, overwrite: bool = False) -> T: ...

    def register(self, name: str, value: T | None = None, *, overwrite: bool = False):  # type: ignore[no-untyped-def]
        """`register(name, value)`, or `@register(name)` above a function or class."""
        if value is None:

            def decorate(obj: T) -> T:
                return self.register(name, obj, overwrite=overwrite)

            return decorate
        if name in self._entries and not overwrite:
            raise ValueError(f"{self.kind} '{name}' is registered twice; pick another name or pass overwrite=True")
        self._entries[name] = value
        return value

    def get(self, name: str) -> T:
        """The value registered as `name`, or a one-line error naming the known names."""
        if name not in self._entries:
            where = f" ({self.hint})" if self.hint else ""
            raise self.error(f"unknown {self.kind} '{name}'{where}; known: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """(name, value) pairs in registration order (the order op patterns are tried in)."""
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
