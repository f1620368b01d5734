"""The config loader is bounded: an alias bomb, a huge file or invalid YAML fail fast with one line."""

import time

import pytest

from supernet.config.schema import MAX_YAML_NODES, load_config, parse_yaml
from supernet.core.errors import ConfigError
from tests.conftest import assert_one_line_error, run_cli, run_main


def alias_bomb(levels: int = 9) -> str:
    """The classic billion-laughs document: each level lists the previous one 9 times (9**levels leaves)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_the_bomb_is_small():
    assert len(alias_bomb().encode()) < 500


def test_alias_bomb_config_fails_fast_and_writes_nothing(tmp_path):
    (tmp_path / "bomb.yaml").write_text("space:\n  options:\n    " + alias_bomb().replace("\n", "\n    "))
    start = time.time()
    r = run_cli("train", "--config", str(tmp_path / "bomb.yaml"), "--run-dir", str(tmp_path / "run"), timeout=60)
    assert time.time() - start < 30
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "alias" in r.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize("text", [alias_bomb(6), "a: &a [*a]"])
def test_bombs_and_recursive_aliases_are_refused_before_building(text):
    with pytest.raises(ConfigError, match="alias"):
        parse_yaml(text, "config x")


def test_ordinary_anchors_still_work():
    assert parse_yaml("a: &x [1, 2]\nb: *x\n", "config x") == {"a": [1, 2], "b": [1, 2]}
    assert MAX_YAML_NODES >= 10_000


def test_alias_bomb_in_an_override_is_refused():
    with pytest.raises(ConfigError, match="alias"):
        load_config(None, ["space.options=" + "{" + alias_bomb(7).replace("\n", ", ").rstrip(", ") + "}"])


def test_huge_config_file_is_refused_unread(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * (2 << 20) + "\n")
    with pytest.raises(ConfigError, match="larger than"):
        load_config(path)


def test_invalid_yaml_in_option_is_one_line(tmp_path):
    r = run_main("cost", "--space", "scarlet-s1", "--arch", "0", "--option", "width=[1,")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--option width" in r.stderr, r.stderr


def test_config_with_a_section_given_twice_is_refused_naming_it(tmp_path):
    """Issue 23.13: two `train:` sections trained silently with the second."""
    path = tmp_path / "twice.yaml"
    path.write_text("train:\n  epochs: 1\nsearch:\n  seed: 1\ntrain:\n  epochs: 50\n")
    with pytest.raises(ConfigError, match="duplicate key 'train' \\(line 5\\)"):
        load_config(path)
    # a verb that does not train (on today's main this one fails later, on the missing table)
    args = ("--table", str(tmp_path / "none.csv"), "--space", "scarlet-s1", "--run-dir", str(tmp_path / "run"))
    r = run_main("search", "--config", str(path), *args)
    assert_one_line_error(r, str(path), "duplicate key 'train' (line 5)")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="duplicate key 'epochs'"):
        parse_yaml("train:\n  epochs: 1\n  epochs: 2\n", "config x")


def test_merge_keys_may_still_be_overridden():
    assert parse_yaml("a: &x {b: 1, c: 2}\nd:\n  <<: *x\n  b: 3\n", "config x")["d"] == {"b": 3, "c": 2}
