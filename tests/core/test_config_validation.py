"""Every numeric config field is range-checked with a one-line ConfigError (issue 15 item 7).

The fields come from the config dataclasses, so a new numeric field without a range rule fails here.
"""

import dataclasses
import math
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supernet.config.schema import Config, config_from_dict, load_config
from supernet.core.errors import ConfigError
from supernet.core.ranges import Range, is_numeric, numeric_fields, rule_for


def _sections() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    # sections only: top-level plain fields (e.g. `imports`, a list) hold no numbers
    return {f.name: hints[f.name] for f in dataclasses.fields(Config) if dataclasses.is_dataclass(hints[f.name])}


NUMERIC = [(name, cls, field) for name, cls in _sections().items() for field in numeric_fields(cls)]


def _is_int(cls: type, field: str) -> bool:
    hint = typing.get_type_hints(cls)[field]
    options = typing.get_args(hint) or (hint,)
    return float not in options


def test_every_numeric_field_has_a_range_rule():
    assert len(NUMERIC) > 30
    missing = [f"{name}.{field}" for name, cls, field in NUMERIC if rule_for(cls, field) is None]
    assert missing == []


def test_defaults_are_in_range():
    config_from_dict({})
    for name, cls, field in NUMERIC:
        value = getattr(getattr(Config(), name), field)
        assert value is None or rule_for(cls, field).contains(value), f"{name}.{field}={value}"


def _outside(rule: Range, integer: bool) -> st.SearchStrategy:
    choices = []
    if rule.low is not None:
        low = math.ceil(rule.low) - (0 if rule.low_open else 1)
        choices.append(
            st.integers(max_value=low)
            if integer
            else st.floats(max_value=rule.low, exclude_max=not rule.low_open, allow_nan=False, allow_infinity=False)
        )
    if rule.high is not None:
        high = math.floor(rule.high) + (0 if rule.high_open else 1)
        choices.append(
            st.integers(min_value=high)
            if integer
            else st.floats(min_value=rule.high, exclude_min=not rule.high_open, allow_nan=False, allow_infinity=False)
        )
    if not integer:
        choices.append(st.sampled_from([math.nan, math.inf, -math.inf, ".inf", "-.inf", ".nan", "1e999"]))
    return st.one_of(choices)


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_out_of_range_values_are_one_line_errors_naming_the_field(data):
    name, cls, field = data.draw(st.sampled_from(NUMERIC))
    value = data.draw(_outside(rule_for(cls, field), _is_int(cls, field)))
    with pytest.raises(ConfigError) as err:
        config_from_dict({name: {field: value}})
    message = str(err.value)
    assert "\n" not in message and f"'{name}.{field}'" in message


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_in_range_values_are_accepted(data):
    name, cls, field = data.draw(st.sampled_from(NUMERIC))
    rule = rule_for(cls, field)
    low = -1e6 if rule.low is None else rule.low
    high = 1e6 if rule.high is None else rule.high
    if _is_int(cls, field):
        value = data.draw(
            st.integers(min_value=math.floor(low) + 1, max_value=math.ceil(high) - 1)
            if rule.high is not None
            else st.integers(min_value=math.ceil(low) + 1, max_value=10**6)
        )
    else:
        value = data.draw(st.floats(min_value=low, max_value=high, exclude_min=True, exclude_max=True))
    assert getattr(getattr(config_from_dict({name: {field: value}}), name), field) == value


@pytest.mark.parametrize("field", ["train.grad_clip", "standalone.grad_clip", "search.min_acc", "eval.recal_batches"])
def test_nullable_or_not(field):
    name, key = field.split(".")
    hint = typing.get_type_hints(_sections()[name])[key]
    if type(None) in typing.get_args(hint):
        assert getattr(getattr(config_from_dict({name: {key: None}}), name), key) is None
    else:
        with pytest.raises(ConfigError, match="must not be empty"):
            config_from_dict({name: {key: None}})


def test_negative_grad_clip_is_refused():
    with pytest.raises(ConfigError, match=r"'train.grad_clip' must be > 0 or null, got -1"):
        load_config(None, ["train.grad_clip=-1"])


def test_yaml_1e308_string_is_a_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1e308\ndata:\n  val_size: 1e3\n")  # YAML 1.1 reads both as strings
    cfg = load_config(path, ["standalone.weight_decay=4e-5", "search.min_acc=5e-1"])
    assert (cfg.train.lr, cfg.data.val_size, cfg.standalone.weight_decay, cfg.search.min_acc) == (
        1e308,
        1000.0,
        4e-5,
        0.5,
    )
    with pytest.raises(ConfigError, match="'train.lr' must be float"):
        load_config(None, ["train.lr=1e999"])


def test_is_numeric_ignores_bools_and_strings():
    assert is_numeric(int) and is_numeric(float | None) and not is_numeric(bool) and not is_numeric(str | None)


def test_sections_are_the_dataclasses_the_code_takes():
    """One class per concept (issue 16): `supernet` is the model's SupernetOptions and the training
    sections are the Trainer's OptimConfig, passed on as they are, with the range rules keyed by them."""
    from supernet.model.supernet import SupernetOptions
    from supernet.train.loop import OptimConfig

    cfg = config_from_dict({"supernet": {"identity": "els"}, "train": {"epochs": 2}})
    assert type(cfg.supernet) is SupernetOptions and cfg.supernet.identity == "els"
    assert isinstance(cfg.train, OptimConfig) and isinstance(cfg.standalone, OptimConfig)
    assert rule_for(SupernetOptions, "interchoice_depth") is not None and rule_for(OptimConfig, "lr") is not None


def test_bad_supernet_option_is_refused_when_the_config_is_read():
    with pytest.raises(ConfigError, match="supernet.identity must be one of"):
        config_from_dict({"supernet": {"identity": "zero"}})
