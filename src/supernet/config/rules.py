"""The value rules of the run config's sections (registered into the one table, `supernet.core.ranges`), and
`validate`: every section's fields, then the chosen strategy's and sampler's own options."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from supernet.core.errors import ConfigError
from supernet.core.ranges import (
    AT_LEAST_0,
    AT_LEAST_1,
    POSITIVE,
    PROBABILITY,
    RULES,
    Range,
    _allows_none,
    _as_float,
    _is_union,
    _short,
    check_fields,
    register_rules,
    rule_for,
)
from supernet.search.predictor import DESIGNS, PREDICTORS
from supernet.search.supernet_evaluator import BN_MODES, METRICS, TWINS

# section class name -> field -> rule (None stays allowed where the field's type allows it)
CONFIG_RULES: dict[str, dict[str, Range]] = {
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
    "SupernetOptions": {
        "interchoice_depth": AT_LEAST_1,
        "split_epoch": AT_LEAST_0,
        "split_at": Range(0, 1, high_open=True),  # a fraction of train.epochs; 1 would never split
    },
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
        "few_shot_epochs": AT_LEAST_1,
        "few_shot_lr": POSITIVE,
        "few_shot_max_parts": AT_LEAST_1,
        "health_models": AT_LEAST_0,
        "pairwise_rank_weight": AT_LEAST_0,
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
        "predictor_samples": Range(2),
        "predictor_ridge": POSITIVE,
        "predictor_pair_ridge": POSITIVE,
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


# section class name -> field -> the allowed words of a string field
CONFIG_CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "EvalConfig": {"twins": TWINS, "bn": BN_MODES, "metric": METRICS},
    "SearchConfig": {"predictor": PREDICTORS, "predictor_design": DESIGNS},
}


for _section, _ranges in CONFIG_RULES.items():
    register_rules(_section, _ranges, CONFIG_CHOICES.get(_section))


def validate(config: Any) -> None:
    """Raise ConfigError naming the first field of any section outside its rule."""
    for section_field in dataclasses.fields(config):
        section = getattr(config, section_field.name)
        if dataclasses.is_dataclass(section):  # not a top-level list such as `imports`
            check_fields(section, section_field.name)


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
