"""The value rules of the run config's sections (registered into the one table, `supernet.core.ranges`), and
`validate`: every section's fields, then the chosen strategy's and sampler's own options."""

from __future__ import annotations

import dataclasses
from typing import Any

from supernet.core.ranges import AT_LEAST_0, AT_LEAST_1, POSITIVE, PROBABILITY, Range, check_fields, register_rules
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
    },
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
}


for _section, _ranges in CONFIG_RULES.items():
    register_rules(_section, _ranges, CONFIG_CHOICES.get(_section))


def validate(config: Any) -> None:
    """Raise ConfigError naming the first field of any section outside its rule."""
    for section_field in dataclasses.fields(config):
        section = getattr(config, section_field.name)
        if dataclasses.is_dataclass(section):  # not a top-level list such as `imports`
            check_fields(section, section_field.name)
