"""Human-readable budgets: `330M` MACs, `5.3M` params, `12ms` latency."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from supernet.core.errors import ConfigError

_NUMBER = r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]{1,4}))?"
_QUANTITY = re.compile(rf"\s*{_NUMBER}\s*((?:[kKmMgGtT]i?)?)\s*", re.ASCII)
_DURATION = re.compile(rf"\s*{_NUMBER}\s*(ms|s|us|µs|μs)?\s*", re.ASCII | re.IGNORECASE)
_SCALE = {
    "": 1,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
}  # binary: SPOS Table 6's BitOps "G" is 2^30
_TO_MS = {
    None: Decimal(1),
    "ms": Decimal(1),
    "s": Decimal(1000),
    "us": Decimal("0.001"),
    "µs": Decimal("0.001"),
    "μs": Decimal("0.001"),
}
_MAX_QUANTITY = 10**18
_QUANTITY_FORMS = (
    "a non-negative count like 330M, 6.3G, 1.5k, 4.6e6 or 330000000 "
    "(suffixes k, M, G, T; Ki, Mi, Gi, Ti for powers of 1024)"
)
_DURATION_FORMS = "a non-negative duration like 12ms, 1.2s or 800us (a bare number means ms)"


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _decimal(match: re.Match[str]) -> Decimal:
    mantissa, exponent = match[1], match[2]
    return Decimal(mantissa).scaleb(int(exponent or 0))


def parse_quantity(value: str | int | float) -> int:
    """`"330M"` -> 330_000_000; also `"6.3G"`, `"1.5k"`, `"4.6e6"`, ints. Rounded to the nearest int."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"bad quantity {_show(value)}: expected {_QUANTITY_FORMS}")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(value) if math.isfinite(value) else Decimal(-1)
    else:
        match = _QUANTITY.fullmatch(value)
        if match is None:
            raise ConfigError(f"bad quantity {_show(value)}: expected {_QUANTITY_FORMS}")
        number = _decimal(match) * _SCALE[match[3].lower()]
    if not 0 <= number <= _MAX_QUANTITY:
        raise ConfigError(f"bad quantity {_show(value)}: expected {_QUANTITY_FORMS}, at most 1e18")
    return int(number.to_integral_value())


def parse_duration_ms(value: str | int | float) -> float:
    """`"12ms"` -> 12.0; `"1.2s"` -> 1200.0; `"800us"` -> 0.8; a bare number is in milliseconds."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"bad duration {_show(value)}: expected {_DURATION_FORMS}")
    if isinstance(value, (int, float)):
        ms = float(value)
    else:
        match = _DURATION.fullmatch(value)
        if match is None:
            raise ConfigError(f"bad duration {_show(value)}: expected {_DURATION_FORMS}")
        unit = match[3].lower() if match[3] else None
        try:
            ms = float(_decimal(match) * _TO_MS[unit])
        except (InvalidOperation, OverflowError):  # pragma: no cover - exponents are bounded by the regex
            ms = math.inf
    if not (math.isfinite(ms) and ms >= 0):
        raise ConfigError(f"bad duration {_show(value)}: expected {_DURATION_FORMS}")
    return ms


def format_quantity(n: int | float) -> str:
    """330_000_000 -> `"330.0M"`; below 1000 the plain number."""
    if abs(n) < 1000:
        return str(int(n)) if float(n).is_integer() else f"{n:.1f}"
    for suffix, scale in (("k", 1e3), ("M", 1e6), ("G", 1e9)):
        if round(abs(n) / scale, 1) < 1000:
            return f"{n / scale:.1f}{suffix}"
    return f"{n / 1e12:.1f}T"
