"""The allowed range of every numeric config field, checked once a config is built.

Every int or float field of every config section needs a rule here (a test generates
out-of-range values for each field from this table and the dataclasses, so a new numeric field
without a rule fails it). Rules are looked up along the section's class hierarchy, so sections
that share a base (supernet and stand-alone training) share its rules.
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

# section class name -> field -> rule (None stays allowed where the field's type allows it)
RULES: dict[str, dict[str, Range]] = {
    "DataConfig": {
        "val_size": AT_LEAST_0,
        "split_seed": AT_LEAST_0,
        "train_limit": AT_LEAST_1,
        "resolution": AT_LEAST_1,
        "channels": AT_LEAST_1,
        "max_per_class": AT_LEAST_1,
        "val_per_class": AT_LEAST_1,
        "memory_limit_mb": AT_LEAST_1,
        "workers": AT_LEAST_0,
        "crop_scale_min": Range(0, 1, low_open=True),
        "eval_crop": Range(0, 1, low_open=True),
    },
    "SupernetOptions": {"interchoice_depth": AT_LEAST_1, "split_epoch": AT_LEAST_0},
    "OptimConfig": {
        "epochs": AT_LEAST_1,
        "batch_size": AT_LEAST_1,
        "lr": POSITIVE,
        "momentum": Range(0, 1, high_open=True),
        "weight_decay": AT_LEAST_0,
        "label_smoothing": Range(0, 1, high_open=True),
        "warmup_steps": AT_LEAST_0,
        "warmup_epochs": AT_LEAST_0,
        "seed": AT_LEAST_0,
        "grad_clip": POSITIVE,
        "checkpoint_every_steps": AT_LEAST_0,
        "max_steps_per_epoch": AT_LEAST_1,
    },
    "TrainConfig": {
        "constrained_bins": AT_LEAST_1,
        "sandwich_random": AT_LEAST_0,
        "few_shot_epochs": AT_LEAST_1,
        "few_shot_lr": POSITIVE,
        "drop_rate": Range(0, 1, high_open=True),
        "health_models": AT_LEAST_0,
        "allreduce_bucket_mb": POSITIVE,
    },
    "EvalConfig": {
        "recal_batches": AT_LEAST_1,
        "recal_batch_size": AT_LEAST_1,
        "val_batch_size": AT_LEAST_1,
        "val_limit": AT_LEAST_1,
        "seed": AT_LEAST_0,
    },
    "SearchConfig": {
        "min_acc": PROBABILITY,  # an accuracy (issue 23.19: -1 was accepted)
        "seed": AT_LEAST_0,
        "population": AT_LEAST_1,
        "iterations": AT_LEAST_1,
        "topk": AT_LEAST_1,
        "mutation_prob": PROBABILITY,
        "num_samples": AT_LEAST_1,
    },
    # the Python API's objects and arguments (supernet.api), checked with `check_arguments`
    "LayerChoice": {"channels": AT_LEAST_1, "stride": AT_LEAST_1},
    "module_space": {"num_classes": AT_LEAST_1, "stem_channels": AT_LEAST_1, "stem_stride": AT_LEAST_1},
    "PruneConfig": {
        "stages": Range(2),
        "threshold": Range(0, 1, high_open=True),
        "max_rank": Range(2),
        "epoch_scale": POSITIVE,
    },
}


def is_numeric(hint: Any) -> bool:
    """Whether a field's type hint admits an int or a float (bool excluded)."""
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    return any(option in (int, float) for option in options)


def rule_for(section: type, name: str) -> Range | None:
    for klass in section.__mro__:
        rule = RULES.get(klass.__name__, {}).get(name)
        if rule is not None:
            return rule
    return None


def numeric_fields(section: type) -> list[str]:
    hints = typing.get_type_hints(section)
    return [f.name for f in dataclasses.fields(section) if is_numeric(hints[f.name])]


def validate(config: Any) -> None:
    """Raise ConfigError naming the first numeric field outside its range."""
    for section_field in dataclasses.fields(config):
        section = getattr(config, section_field.name)
        if not dataclasses.is_dataclass(section):  # a top-level list such as `imports`
            continue
        for name in numeric_fields(type(section)):
            value = getattr(section, name)
            path = f"{section_field.name}.{name}"
            rule = rule_for(type(section), name)
            if rule is None:
                raise ConfigError(f"config field '{path}' has no range rule (supernet.config.rules.RULES)")
            if value is not None and not rule.contains(_as_float(value)):
                nullable = " or null" if _allows_none(typing.get_type_hints(type(section))[name]) else ""
                raise ConfigError(f"config field '{path}' must be {rule.describe()}{nullable}, got {_short(value)}")


def check_arguments(section: type | str, values: dict[str, Any], hints: dict[str, Any], where: str) -> None:
    """The Python API's counterpart of `validate`: each value's type (no YAML coercion: `'2'` is not a
    number, `1.5` is not an int, a bool is neither) and range, by the rules of `section` (a class, looked up
    along its hierarchy, or a RULES key). Raises ConfigError naming `where`'s argument and the allowed range."""
    for name, value in values.items():
        rule = rule_for(section, name) if isinstance(section, type) else RULES.get(section, {}).get(name)
        if rule is None or value is None and _allows_none(hints[name]):
            continue
        expected = _number_kind(hints[name])
        nullable = " or None" if _allows_none(hints[name]) else ""
        if not _is_kind(value, expected):
            raise ConfigError(
                f"{where}: {name} must be {'an int' if expected is int else 'a number'} {rule.describe()}{nullable}, "
                f"got {_short(value)} ({type(value).__name__})"
            )
        if not rule.contains(_as_float(value)):
            raise ConfigError(f"{where}: {name} must be {rule.describe()}{nullable}, got {_short(value)}")


def _number_kind(hint: Any) -> type:
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    return float if float in options else int


def _is_kind(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind is int else isinstance(value, int | float)


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
