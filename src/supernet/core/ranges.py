"""The one table of value rules: the allowed range of every numeric field and the allowed words of some
string fields, for the config's sections and for every strategy's and sampler's options dataclass.

Each owner registers its rules beside its dataclass (`register_rules`): the config sections in
`supernet.config.rules`, a strategy or sampler in its own module, so a new one is one file. Every int or
float field needs a rule (a test generates out-of-range values for each config field from this table).
Rules are looked up along the class hierarchy, so sections that share a base share its rules.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from supernet.core.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """`low <= value <= high` (either end optional, `open` ends strict); the value must be finite."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        low = None if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
        high = None if self.high is None else f"{'<' if self.high_open else '<='} {self.high:g}"
        if low and high:
            return f"{low} and {high}"
        return low or high or "a finite number"


AT_LEAST_0 = Range(0)
AT_LEAST_1 = Range(1)
POSITIVE = Range(0, low_open=True)
PROBABILITY = Range(0, 1)
FINITE = Range()

# class name -> field -> rule (None stays allowed where the field's type allows it)
RULES: dict[str, dict[str, Range]] = {}
# class name -> field -> the allowed words of a string field
CHOICES: dict[str, dict[str, tuple[str, ...]]] = {}


def register_rules(
    cls: type | str, ranges: dict[str, Range] | None = None, choices: dict[str, tuple[str, ...]] | None = None
) -> None:
    """The rules of `cls`'s fields (its class name is the key)."""
    name = cls if isinstance(cls, str) else cls.__name__
    RULES.setdefault(name, {}).update(ranges or {})
    CHOICES.setdefault(name, {}).update(choices or {})


def is_numeric(hint: Any) -> bool:
    """Whether a field's type hint admits an int or a float (bool excluded)."""
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    return any(option in (int, float) for option in options)


def is_integer(hint: Any) -> bool:
    """Whether a numeric field's type hint admits integers only."""
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    return int in options and float not in options


def _number_of_type(value: Any, hint: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or not is_integer(hint)


def rule_for(section: type, name: str) -> Range | None:
    for klass in section.__mro__:
        rule = RULES.get(klass.__name__, {}).get(name)
        if rule is not None:
            return rule
    return None


def numeric_fields(section: type) -> list[str]:
    hints = typing.get_type_hints(section)
    return [f.name for f in dataclasses.fields(section) if is_numeric(hints[f.name])]


def check_fields(obj: Any, where: str) -> None:
    """Raise ConfigError naming the first field of the dataclass `obj` outside its rule (`where.field`)."""
    hints = typing.get_type_hints(type(obj))
    for name in numeric_fields(type(obj)):
        value = getattr(obj, name)
        rule = rule_for(type(obj), name)
        if rule is None:
            raise ConfigError(f"config field '{where}.{name}' has no range rule (supernet.core.ranges.RULES)")
        if value is not None and not _number_of_type(value, hints[name]):
            kind = "an integer" if is_integer(hints[name]) else "a number"
            raise ConfigError(f"config field '{where}.{name}' must be {kind}, got {_short(value)}")
        if value is not None and not rule.contains(_as_float(value)):
            nullable = " or null" if _allows_none(hints[name]) else ""
            raise ConfigError(f"config field '{where}.{name}' must be {rule.describe()}{nullable}, got {_short(value)}")
    for klass in type(obj).__mro__:
        for name, allowed in CHOICES.get(klass.__name__, {}).items():
            if getattr(obj, name) not in allowed:
                raise ConfigError(
                    f"config field '{where}.{name}' must be one of {', '.join(allowed)}, got {getattr(obj, name)!r}"
                )


def _as_float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond float range is out of every range
        return math.inf


def _short(value: float) -> str:
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:12]}...({len(text)} digits)"


def _allows_none(hint: Any) -> bool:
    return _is_union(hint) and type(None) in typing.get_args(hint)


def _is_union(hint: Any) -> bool:
    return isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
