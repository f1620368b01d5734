import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supernet.core.errors import ConfigError
from supernet.cost import format_quantity, parse_duration_ms, parse_quantity


@pytest.mark.parametrize(
    "text,value",
    [
        ("330M", 330_000_000),
        ("6.3G", 6_300_000_000),
        ("1.5k", 1500),
        ("4.6e6", 4_600_000),
        ("330000000", 330_000_000),
        (" 12 K ", 12_000),
        ("0.1T", 100_000_000_000),
        (".5M", 500_000),
        ("2.", 2),
        (42, 42),
        (3e6, 3_000_000),
    ],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text,ms",
    [("12ms", 12.0), ("1.2s", 1200.0), ("800us", 0.8), ("800µs", 0.8), ("7", 7.0), (" 3 MS", 3.0), (2.5, 2.5)],
)
def test_parse_duration(text, ms):
    assert parse_duration_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "M",
        "-5M",
        "330X",
        "1e",
        "nan",
        "inf",
        "1,000",
        "1e99",
        "1e9999",
        "1e999999999",
        "3 M B",
        True,
        None,
        -1,
        float("nan"),
        "\u0663",
    ],
)
def test_bad_quantity(bad):
    with pytest.raises(ConfigError) as e:
        parse_quantity(bad)
    assert "\n" not in str(e.value) and "330M" in str(e.value)


@pytest.mark.parametrize("bad", ["", "ms", "-1ms", "5min", "1e9999s", "1e999999999ms", "inf", float("inf"), -2, False])
def test_bad_duration(bad):
    with pytest.raises(ConfigError) as e:
        parse_duration_ms(bad)
    assert "\n" not in str(e.value) and "12ms" in str(e.value)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet="0123456789.eE+-kKmMgGtTsSu µ ", max_size=12)))
def test_arbitrary_text_only_raises_config_error(text):
    for parse in (parse_quantity, parse_duration_ms):
        try:
            value = parse(text)
        except ConfigError as e:
            assert "\n" not in str(e)
        else:
            assert value >= 0


@given(st.integers(0, 10**15))
def test_int_round_trip(n):
    assert parse_quantity(str(n)) == n
    assert parse_quantity(n) == n
    # The formatted form is exact below 1000, else within rounding to one decimal of its unit (<= n).
    back = parse_quantity(format_quantity(n))
    assert back == n if n < 1000 else abs(back - n) <= 0.05 * n


@given(st.floats(0, 1e15, allow_nan=False))
def test_float_round_trip(x):
    assert parse_quantity(repr(x)) == round(x)
    assert parse_duration_ms(f"{x}ms") == pytest.approx(x)
    assert parse_duration_ms(f"{x}s") == pytest.approx(x * 1000)


@pytest.mark.parametrize(
    "n,text",
    [
        (330_000_000, "330.0M"),
        (6_300_000_000, "6.3G"),
        (1500, "1.5k"),
        (999, "999"),
        (999_960, "1.0M"),
        (5_300_000, "5.3M"),
        (0, "0"),
    ],
)
def test_format_quantity(n, text):
    assert format_quantity(n) == text
