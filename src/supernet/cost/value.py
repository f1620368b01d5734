"""`Cost`: the cost of one stand-alone model, as the cost tables (`cost.table`, `cost.let`) price it."""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field

BUILTIN_METRICS = ("macs", "params")
Number = int | float
_EMPTY: Mapping[str, Number] = types.MappingProxyType({})


@dataclass(frozen=True)
class Cost:
    """The cost of one stand-alone model. `extra` holds plugged-in metrics (e.g. `latency_ms`)."""

    macs: int
    params: int
    extra: Mapping[str, Number] = field(default_factory=lambda: _EMPTY, hash=False, repr=False)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"Cost({fields})"

    def __getitem__(self, name: str) -> Number:
        if name == "macs":
            return self.macs
        if name == "params":
            return self.params
        try:
            return self.extra[name]
        except KeyError:
            raise KeyError(f"no metric {name!r}; have: {', '.join(('macs', 'params', *self.extra))}") from None

    def to_dict(self) -> dict[str, Number]:
        return {"macs": self.macs, "params": self.params, **self.extra}
