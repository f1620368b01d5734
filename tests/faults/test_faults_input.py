"""Property-based bad input: config fields, constraint specs and CLI options fail with one line."""

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supernet.cli import main
from supernet.config.schema import load_config
from supernet.core.errors import ConfigError, SupernetError
from supernet.cost import parse_quantity

FIELDS = [
    "train.epochs",
    "train.lr",
    "train.nesterov",
    "train.sampler",
    "data.val_size",
    "data.name",
    "search.max_macs",
    "eval.recal_batches",
    "supernet.identity",
    "space.options",
    "train.grad_clip",
]
values = st.one_of(
    st.text(max_size=20), st.integers(), st.floats(), st.booleans(), st.none(), st.lists(st.integers(), max_size=3)
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIELDS + ["x.y", "train", "train.", ".z", "train.nope"]), values)
def test_config_overrides_fail_only_with_config_error(field, value):
    try:
        load_config(None, [f"{field}={value}"])
    except ConfigError as e:
        assert "\n" not in str(e) and str(e)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable + "µ", max_size=12))
def test_constraint_specs_parse_or_name_the_value(text):
    try:
        value = parse_quantity(text)
    except ConfigError as e:
        assert "\n" not in str(e)
    else:
        assert isinstance(value, int)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arch=st.text(max_size=40), width=st.one_of(st.none(), st.sampled_from(["0", "-1", "abc", "0.25", "1e9"])))
def test_cost_cli_with_arbitrary_options(capsys, arch, width):
    args = ["cost", "--space", "scarlet-s1", "--preset", "fashion-mnist", "--arch", arch, "--json"]
    if width is not None:
        args += [f"--width={width}"]
    try:
        code = main(args)
    except SystemExit as e:  # argparse: usage errors
        code = e.code
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    if code == 0:
        assert '"macs"' in out.out
    else:
        assert code == 2 and len(out.err.strip().splitlines()) == 1, out.err


def test_supernet_errors_are_user_errors():
    assert issubclass(ConfigError, SupernetError)
