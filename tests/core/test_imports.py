"""`--import` / `imports:`: a space and an op from a user file, train -> search -> export, and checkpoints
that name their imports (never running them) when loaded without them."""

import json
import shutil
from pathlib import Path

import pytest

from supernet.cli import main
from supernet.core.errors import ConfigError
from supernet.core.plugins import import_one
from tests.conftest import assert_one_line_error, needs_fashion, run_cli, set_args

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_space.py"
TINY = [
    "data.train_limit=240",
    "data.val_size=80",
    "space.name=dilated-chain",
    "space.preset=fashion-mnist",
    "space.options={width: 8, depth: 3}",
    "train.epochs=1",
    "train.batch_size=40",
    "train.progress=false",
    "eval.recal_batches=1",
    "eval.recal_batch_size=40",
    "eval.val_batch_size=80",
    "search.options={population: 4, iterations: 1, topk: 2}",
]


@needs_fashion
def test_custom_space_train_search_export_and_refusal_without_import(tmp_path, capsys):
    plugin = tmp_path / "plugin dir" / "my_space.py"
    plugin.parent.mkdir()
    shutil.copy(EXAMPLE, plugin)
    config = tmp_path / "config.yaml"
    config.write_text(f"imports: [{json.dumps(str(plugin))}]\n")  # the config's imports: list
    run = tmp_path / "run"
    train = run_cli("train", "--config", str(config), "--run-dir", str(run), *set_args(TINY))
    assert train.returncode == 0, train.stderr
    search = run_cli(
        "search", "--import", str(plugin), "--supernet", str(run), "--run-dir", str(tmp_path / "s"), *set_args(TINY)
    )  # --import after the verb
    assert search.returncode == 0, search.stderr
    export = run_cli(
        "--import",
        str(plugin),
        "export",
        "--supernet",
        str(run),
        "--arch",
        str(tmp_path / "s" / "result.json"),
        "--out",
        str(tmp_path / "export"),
    )
    assert export.returncode == 0, export.stderr
    model = json.loads((tmp_path / "export" / "model.json").read_text())
    assert model["arch"] == json.loads((tmp_path / "s" / "result.json").read_text())["best"]
    assert ("dil2" in model["arch"]) == any(block["type"] == "dilated_conv" for block in model["blocks"])

    from supernet.train.checkpoint import load_checkpoint

    meta = load_checkpoint(run / "checkpoints" / "last.pt").meta
    assert meta["imports"] == [str(plugin.resolve())]
    assert meta["space_description"]["name"] == "dilated-chain"

    # in this process nothing imported the plugin: the checkpoint names it and is refused
    for argv in (
        ["export", "--supernet", str(run), "--arch", "id,id,id", "--out", str(tmp_path / "e2")],
        ["search", "--supernet", str(run), "--run-dir", str(tmp_path / "s2"), *set_args(TINY)],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "dilated-chain" in err and f"--import {plugin.resolve()}" in err
    assert not (tmp_path / "e2" / "model.json").exists() and not (tmp_path / "s2" / "journal.sqlite").exists()


def test_checkpoint_imports_are_never_run(tmp_path, capsys, tiny_space):
    """A checkpoint naming an import that would leave a trace is refused without running it."""
    from supernet.model.supernet import Supernet
    from supernet.train.checkpoint import save_checkpoint

    trap = tmp_path / "trap.py"
    trap.write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    space = tiny_space
    meta = {
        "kind": "supernet",
        "space": "not-registered",
        "space_options": {},
        "space_fingerprint": "x",
        "imports": [str(trap)],
        "supernet": {},
    }
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    save_checkpoint(tmp_path / "run" / "checkpoints", meta, {"model": Supernet(space).state_dict()})
    assert main(["export", "--supernet", str(tmp_path / "run"), "--arch", "x", "--out", str(tmp_path / "e")]) == 2
    assert "not-registered" in capsys.readouterr().err and not (tmp_path / "ran").exists()


def test_import_errors_are_one_line(tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("x = 1\nraise RuntimeError('bad plugin')\n")
    with pytest.raises(ConfigError, match=r"broken.py failed: line 2: RuntimeError: bad plugin"):
        import_one(str(broken))
    with pytest.raises(ConfigError, match="no such file"):
        import_one(str(tmp_path / "missing.py"))
    with pytest.raises(ConfigError, match="no module named 'no_such_module_xyz'"):
        import_one("no_such_module_xyz")
    assert main(["--import", str(broken), "spaces"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RuntimeError: bad plugin" in err


def test_file_imported_once_and_module_by_name(tmp_path):
    counter = tmp_path / "count.py"
    counter.write_text(
        "import builtins\nbuiltins._supernet_test_count = getattr(builtins, '_supernet_test_count', 0) + 1\n"
    )
    import builtins

    first, second = import_one(str(counter)), import_one(str(counter))
    assert first is second and builtins._supernet_test_count == 1
    assert import_one("json").dumps([1]) == "[1]"


def test_imported_dataset_streams_any_torch_dataset(tmp_path):
    """A dataset registered by an imported file: a plain list of (array, label) pairs wrapped in TorchDataset."""
    plugin = tmp_path / "my_data.py"
    plugin.write_text(
        "import numpy as np\n"
        "from supernet.data import DATASETS, TorchDataset\n"
        "def load(root, size=12):\n"
        "    rng = np.random.default_rng(0)\n"
        "    pairs = [(rng.integers(0, 255, (size, size, 3), dtype=np.uint8), i % 2) for i in range(30)]\n"
        "    return TorchDataset(pairs, ['even', 'odd']), TorchDataset(pairs[:6], ['even', 'odd'])\n"
        "DATASETS.register('test-plugin-pairs', load)\n"
    )
    import_one(str(plugin))
    from supernet.config.schema import load_config
    from supernet.runs.build import load_data, train_loader

    cfg = load_config(
        None,
        [
            "data.name=test-plugin-pairs",
            "data.val_size=6",
            "data.resolution=8",
            "data.workers=0",
            "data.options={size: 16}",
        ],
    )
    splits = load_data(cfg)
    assert splits.streaming and splits.image_shape == (3, 8, 8) and splits.num_classes == 2
    x, y = next(iter(train_loader(cfg, splits, 4, seed=0)))
    assert x.shape == (4, 3, 8, 8) and set(y.tolist()) <= {0, 1}
    cfg.data.val_per_class = 2  # a class-balanced split reads the labels of a streaming source
    assert sorted(load_data(cfg).val.labels.tolist()) == [0, 0, 1, 1]


@pytest.mark.parametrize("code", ["0", "None", "3"])
def test_plugin_calling_sys_exit_is_a_one_line_error_not_a_silent_exit(tmp_path, code):
    """Issue 23.18: a plugin's sys.exit(0) ended the command with exit 0 and nothing done."""
    quitter = tmp_path / "quitter.py"
    quitter.write_text(f"import sys\nsys.exit({code})\n")
    r = run_cli("--import", str(quitter), "spaces")
    assert_one_line_error(r, "quitter.py failed: line 2:", "sys.exit(")
    assert r.stdout == ""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "quitting_mod.py").write_text(f"import sys\nsys.exit({code})\n")
    with pytest.raises(ConfigError, match=r"quitting_mod failed: it called sys.exit"):
        import sys

        sys.path.insert(0, str(package))
        try:
            import_one("quitting_mod")
        finally:
            sys.path.remove(str(package))


@pytest.mark.parametrize(
    ("pattern", "name", "owner"),
    [
        (r"^e(?P<e>\d+)k(?P<k>\d+)$", "e1k3", "_se)?$"),  # the MobileNet ops (first name in order)
        (r"^(id|idx)$", "id", "^id$"),
        (r"^skip.*$", "skip", "skip_connect|skip"),
    ],
)
def test_plugin_op_pattern_overlapping_a_builtin_op_name_is_a_one_line_error(tmp_path, pattern, name, owner):
    """Issue 28.14: the plugin's pattern was registered and silently never used for the built-in names."""
    plugin = tmp_path / "overlap.py"
    plugin.write_text(
        "from supernet.ops.candidates import register_op\n"
        f"register_op({pattern!r}, lambda m, layer, identity: {{'type': 'identity'}})\n"
    )
    r = run_cli("--import", str(plugin), "spaces")
    assert_one_line_error(r, "overlap.py failed: line 2:", repr(pattern), repr(name), owner)
    assert r.stdout == ""


def test_plugin_op_pattern_of_new_names_is_accepted(tmp_path):
    plugin = tmp_path / "fresh.py"
    plugin.write_text(
        "from supernet.ops.candidates import OP_PATTERNS, register_op\n"
        "register_op(r'^fresh(?P<n>\\d)$', lambda m, layer, identity: {'type': 'identity'})\n"
        "assert r'^fresh(?P<n>\\d)$' in OP_PATTERNS.names()\n"
    )
    run_cli("--import", str(plugin), "spaces", code=0)
