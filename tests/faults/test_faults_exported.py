"""`load_exported` on an export folder from someone else (issue 29.4, SECURITY.md): nothing is imported from
the folder, a bad weights.pt or model.json is one line of ours, sizes are bounded before anything is built."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

import supernet
from supernet.core.errors import CheckpointError, SpaceError, SupernetError
from supernet.jobs.export import load_exported
from tests.conftest import cli_env

PLANTED = """
from pathlib import Path
Path(__file__).with_name("PLANTED_RAN").write_text("imported")
import torch
class DW(torch.nn.Conv2d):
    def __init__(self, cin, cout, stride):
        super().__init__(cin, cout, 3, stride, 1)
"""


@pytest.fixture(scope="module")
def export_once(tmp_path_factory):
    from supernet.space import create_space
    from tests.conftest import TINY_SPACE

    space = create_space("scarlet-s1", **TINY_SPACE)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("exported") / "export"
    supernet.export(supernet.build_supernet(space), ",".join(layer.choices[0] for layer in space.layers), out)
    return out


@pytest.fixture
def exported(export_once, tmp_path):
    """A fresh copy of one export (model.json, weights.pt) per test."""
    out = tmp_path / "export"
    out.mkdir()
    for name in ("model.json", "weights.pt"):
        (out / name).write_bytes((export_once / name).read_bytes())
    return out


def _edit(folder, change):
    path = folder / "model.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


def _conv_index(config):
    return next(i for i, b in enumerate(config["blocks"]) if "in" in b and "out" in b)


def _one_line(info, *needles):
    message = str(info.value)
    assert "\n" not in message and "weights_only" not in message, message
    for needle in needles:
        assert needle in message, message


def test_a_module_planted_beside_model_json_is_never_imported(exported, monkeypatch):
    (exported / "blocks_util.py").write_text(PLANTED)

    def plant(config):
        block = config["blocks"][_conv_index(config)]
        config["blocks"][_conv_index(config)] = {
            "type": "module",
            "factory": "blocks_util:DW",
            "in": block["in"],
            "out": block["out"],
            "stride": 1,
        }

    _edit(exported, plant)
    monkeypatch.syspath_prepend(str(exported))  # as when the folder is the current directory
    with pytest.raises(SpaceError) as info:
        load_exported(exported)
    _one_line(info, "blocks_util", "trust_modules")
    assert not (exported / "PLANTED_RAN").exists() and "blocks_util" not in sys.modules
    # the same from a fresh interpreter started in the folder, and `this:` (the Zen of Python on import)
    code = "import supernet; supernet.load_exported('.')"
    r = subprocess.run([sys.executable, "-c", code], cwd=exported, env=cli_env(), capture_output=True, text=True)
    assert r.returncode == 1 and "not imported by this process" in r.stderr.splitlines()[-1]
    assert not (exported / "PLANTED_RAN").exists()
    _edit(exported, lambda c: c["blocks"][_conv_index(c)].update(factory="this:Foo"))
    r = subprocess.run([sys.executable, "-c", code], cwd=exported, env=cli_env(), capture_output=True, text=True)
    assert r.returncode == 1 and "Beautiful is better" not in r.stdout and "'this'" in r.stderr.splitlines()[-1]


def test_an_imported_or_trusted_module_is_used(exported, monkeypatch):
    (exported / "blocks_util.py").write_text(PLANTED)
    monkeypatch.syspath_prepend(str(exported))
    monkeypatch.delitem(sys.modules, "blocks_util", raising=False)
    _edit(exported, lambda c: c["blocks"].insert(1, {"type": "module", "factory": "blocks_util:DW", "in": 1, "out": 1}))
    with pytest.raises(CheckpointError, match="does not match model.json"):  # trusted: imported, then checked
        load_exported(exported, trust_modules=["blocks_util"])
    assert (exported / "PLANTED_RAN").exists()
    with pytest.raises(SpaceError, match="not a module name"):
        load_exported(exported, trust_modules=["../evil.py"])


@pytest.mark.parametrize(
    "content",
    [b"not a pickle at all", b"", "object"],
)
def test_a_tampered_weights_file_is_one_line_of_ours(exported, content):
    path = exported / "weights.pt"
    if content == "object":  # a pickle that would rebuild an arbitrary global: torch refuses it, we say so
        torch.save({"w": torch.zeros(1), "x": supernet.core.errors.ConfigError("x")}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_exported(exported)
    _one_line(info, "weights.pt", "exported weights file")


def test_weights_that_do_not_match_model_json_are_one_line(exported):
    weights = torch.load(exported / "weights.pt", weights_only=True)
    model = load_exported(exported)  # the export as written loads, with its weights
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
    key = next(iter(weights))
    torch.save({**weights, key: torch.zeros(3)}, exported / "weights.pt")
    with pytest.raises(CheckpointError) as info:
        load_exported(exported)
    _one_line(info, "weights.pt", key)
    torch.save({**weights, key: torch.zeros(1).expand(*weights[key].shape)}, exported / "weights.pt")
    with pytest.raises(CheckpointError) as info:  # an expanded view claims memory the file does not hold
        load_exported(exported)
    _one_line(info, "weights.pt")


def _set(field, value):
    return lambda c: c["blocks"][_conv_index(c)].update({field: value})


BAD_JSON = {
    "not json": lambda p: p.write_text("{not json"),
    "NaN": lambda p: p.write_text(p.read_text().replace('"input_shape": [', '"input_shape": [NaN, ', 1)),
    "Infinity": lambda p: p.write_text(p.read_text().replace('"input_shape": [', '"input_shape": [Infinity, ', 1)),
    "duplicate key": lambda p: p.write_text(p.read_text().replace('"format"', '"blocks": [], "format"', 1)),
    "a list": lambda p: p.write_text("[1, 2]"),
    "no blocks": lambda p: _edit(p.parent, lambda c: c.pop("blocks")),
    "a block that is a string": lambda p: _edit(p.parent, lambda c: c["blocks"].insert(0, "conv")),
    "an unknown block type": lambda p: _edit(p.parent, lambda c: c["blocks"].insert(0, {"type": "evil"})),
    "a missing field": lambda p: _edit(p.parent, lambda c: c["blocks"][_conv_index(c)].pop("out")),
    "a field of the wrong type": lambda p: _edit(p.parent, _set("out", "wide")),
    "a bad input shape": lambda p: _edit(p.parent, lambda c: c.update(input_shape=[1, -28, 28])),
}


@pytest.mark.parametrize("case", list(BAD_JSON))
def test_a_bad_model_json_is_one_named_line(exported, case):
    BAD_JSON[case](exported / "model.json")
    with pytest.raises(SupernetError) as info:
        load_exported(exported)
    _one_line(info)
    assert "model.json" in str(info.value) or "evil" in str(info.value)


def test_sizes_are_bounded_before_anything_is_allocated(exported):
    """`"in": 10**9` (a 36 GB conv) and `"in": 10**5` (within the bound, 360 GB) under a 4 GB address-space
    limit: refused in one line, never allocated."""
    code = textwrap.dedent(
        f"""
        import json, resource, sys
        from pathlib import Path
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        from supernet.jobs.export import load_exported
        from supernet.core.errors import CheckpointError
        path = Path({str(exported / "model.json")!r})
        original = path.read_text()
        for size in (10**9, 10**5):
            config = json.loads(original)
            i = next(i for i, b in enumerate(config["blocks"]) if "in" in b and "out" in b)
            config["blocks"][i]["out"] = size
            path.write_text(json.dumps(config))
            try:
                load_exported(path.parent)
            except CheckpointError as e:
                print(size, e)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and "size bound 1048576" in lines[0] and "model.json's model needs" in lines[1], r.stdout
