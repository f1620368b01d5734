"""The Python API (`import supernet`): its names, a cheap import, a space over the user's own modules that trains,
searches, exports and reloads in a fresh process, and the one-line errors of a missing module or extra."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from functools import partial
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

import supernet
from supernet.core.errors import SpaceError
from tests.conftest import REPO, cli_env

CANDIDATES = '''
from torch import nn


class Conv(nn.Sequential):
    def __init__(self, cin, cout, stride, kernel=3):
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Pool(nn.Module):
    """Changes the width with a 1x1 conv, then max-pools; no BatchNorm."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.proj = nn.Conv2d(cin, cout, 1)
        self.pool = nn.MaxPool2d(3, stride, 1)

    def forward(self, x):
        return self.pool(self.proj(x))
'''
MODULE = "api_test_candidates"


def python(code: str, *paths: Path) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter with src/ (and `paths`) importable."""
    env = cli_env()
    env["PYTHONPATH"] = ":".join([str(REPO / "src"), *map(str, paths)])
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def candidates(tmp_path, monkeypatch):
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / f"{MODULE}.py").write_text(CANDIDATES)
    monkeypatch.syspath_prepend(str(folder))
    yield folder, importlib.import_module(MODULE)
    sys.modules.pop(MODULE, None)


def quadrants(n: int, seed: int) -> TensorDataset:
    y = torch.randint(0, 4, (n,), generator=torch.Generator().manual_seed(seed))
    x = torch.nn.functional.one_hot(y, 4).float().view(n, 1, 2, 2).repeat_interleave(4, 2).repeat_interleave(4, 3)
    return TensorDataset(x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed)), y)


def test_import_supernet_does_not_import_torch():
    out = python("import supernet, sys; print('torch' in sys.modules, supernet.__version__)")
    assert out.returncode == 0, out.stderr
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert out.stdout.split() == ["False", version]


def test_every_public_name_resolves_and_none_shadows_a_subpackage():
    subpackages = {p.name for p in (REPO / "src" / "supernet").iterdir() if (p / "__init__.py").is_file()}
    names = [n for n in supernet.__all__ if n != "__version__"]
    assert not set(names) & subpackages  # `import supernet.search` would replace such a name with the module
    assert {"module_space", "LayerChoice", "fit", "search_arch", "make_strategy", "export", "load_exported"} <= set(
        names
    )
    for name in names:
        assert getattr(supernet, name) is not None
    assert set(supernet.__all__) <= set(dir(supernet))
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        supernet.nonsense  # noqa: B018


def tiny_space(mods):
    ops = {"c3": mods.Conv, "c5": partial(mods.Conv, kernel=5), "pool": mods.Pool, "skip": "id"}
    layers = [supernet.LayerChoice({k: v for k, v in ops.items() if k != "skip"}, 8, stride=2)]
    layers += [supernet.LayerChoice(ops)] * 2
    return supernet.module_space(layers, (1, 8, 8), num_classes=4, stem_channels=4)


def test_module_space_trains_searches_exports_and_reloads_in_a_fresh_process(candidates, tmp_path):
    folder, mods = candidates
    torch.manual_seed(0)
    space = tiny_space(mods)
    assert space.layers[1].choices == ("c3", "c5", "pool", "skip") and space.size == 3 * 4 * 4
    net = supernet.build_supernet(space)
    train_set, val_set = quadrants(128, 1), quadrants(64, 2)
    fit = supernet.fit(net, train_set, epochs=1, batch_size=32, device="cpu")  # compared with CPU outputs below
    assert fit.global_step == 4 and len(fit.epochs) == 1
    seen = []
    result = supernet.search_arch(
        net,
        val_set,
        train_data=train_set,
        max_macs=30_000,
        population=4,
        iterations=2,
        callbacks=[lambda arch, metrics: seen.append((arch, metrics))],
    )
    assert seen and all(m["macs"] <= 30_000 for _, m in seen) and result.best_metrics["macs"] <= 30_000
    out = tmp_path / "export"
    model = supernet.export(net, result.best, out)
    # the cost table prices the arch as the counter counts the exported model of user modules
    assert supernet.arch_cost(space, result.best)["macs"] == supernet.count_macs(model, (1, 8, 8))
    x = val_set.tensors[0][:5]
    torch.save({"x": x, "y": model(x).detach()}, tmp_path / "io.pt")
    code = (
        "import sys, torch, supernet; io = torch.load(sys.argv[1]); "
        "m = supernet.load_exported(sys.argv[2], trust_modules=['api_test_candidates']); "
        "print(torch.allclose(m(io['x']), io['y'], atol=1e-6), 'api_test_candidates' in sys.modules)"
    )
    code = code.replace("sys.argv[1]", repr(str(tmp_path / "io.pt"))).replace("sys.argv[2]", repr(str(out)))
    reloaded = python(code, folder)
    assert reloaded.returncode == 0, reloaded.stderr
    assert reloaded.stdout.split() == ["True", "True"]  # the trusted module was imported by the name model.json records
    untrusted = python(code.replace(", trust_modules=['api_test_candidates']", ""), folder)
    assert untrusted.returncode == 1
    last = untrusted.stderr.strip().splitlines()[-1]
    assert "not imported by this process and not trusted" in last and "trust_modules" in last
    missing = python(code)  # trusted, in a process where the user's module is not importable
    assert missing.returncode == 1
    last = missing.stderr.strip().splitlines()[-1]
    assert last.startswith("supernet.core.errors.SpaceError: module block api_test_candidates:")
    assert "no module named 'api_test_candidates'" in last and "PYTHONPATH" in last


def test_ask_tell_strategy_respects_the_budget(candidates):
    space = tiny_space(candidates[1])
    bounds = supernet.constraints(max_params="2K")
    strategy = supernet.make_strategy(space, "random", bounds=bounds, num_samples=6, seed=3)
    asked = []
    while not strategy.done:
        archs = strategy.ask()
        asked += archs
        strategy.tell([(a, {"accuracy": len(set(a.ops)) / 10}) for a in archs])
    assert asked and all(supernet.arch_cost(space, a)["params"] <= 2000 for a in asked)
    assert strategy.result().best_metrics["params"] <= 2000


def test_fit_takes_a_dataloader_and_search_takes_an_evaluate_function(candidates):
    from torch.utils.data import DataLoader

    from supernet.core.errors import ConfigError

    space = tiny_space(candidates[1])
    net = supernet.build_supernet(space)
    assert supernet.fit(net, DataLoader(quadrants(96, 1), batch_size=32), epochs=2).global_step == 6
    with pytest.raises(ConfigError, match="data must be a torch Dataset or DataLoader, got int"):
        supernet.fit(net, 42)
    with pytest.raises(ConfigError, match="fit\\(\\) has no option 'bogus'"):
        supernet.fit(net, quadrants(64, 1), bogus=1)
    result = supernet.search_arch(
        space, evaluate=lambda arch: arch.ops.count("skip") / 2, strategy="random", num_samples=8, max_params="2K"
    )
    assert result.best_metrics["params"] <= 2000 and result.best_metrics["accuracy"] == max(
        row["metrics"]["accuracy"] for row in result.history
    )


def test_the_docs_predictor_recipe_searches_the_fitted_model(candidates):
    """docs/api.md, "To search a predictor": score a sample, fit, search the fit."""
    from supernet.search import AdditivePredictor, predictor_sample

    torch.manual_seed(0)
    net = supernet.build_supernet(tiny_space(candidates[1]))
    scorer = supernet.evaluator(net, quadrants(64, 2), train_data=quadrants(64, 1))
    sample = predictor_sample(net.space, 12, seed=0, design="depth-balanced")
    model = AdditivePredictor.fit(net.space, sample, scorer.evaluate_many(sample))
    result = supernet.search_arch(net.space, evaluate=model.predict, strategy="random", num_samples=20, max_params="2K")
    assert len(set(sample)) == 12 and result.best_metrics["params"] <= 2000
    assert result.best_metrics["accuracy"] == model.predict(result.best)


def test_bad_candidates_are_one_line_errors(candidates):
    class Local(torch.nn.Identity):
        pass

    for bad, needle in (
        (Local, "defined inside a function"),
        (len, "not an nn.Module subclass"),
        (partial(candidates[1].Conv, kernel=object()), "JSON values"),
    ):
        with pytest.raises(SpaceError, match=needle) as info:
            supernet.module_space([supernet.LayerChoice([bad])], (1, 8, 8), 4)
        assert "\n" not in str(info.value)
    with pytest.raises(SpaceError, match="two candidates are named 'conv'"):
        supernet.module_space([supernet.LayerChoice([candidates[1].Conv] * 2)], (1, 8, 8), 4)


def test_load_factory_refuses_what_is_not_a_module_class():
    from supernet.ops.modules import load_factory

    with pytest.raises(SpaceError, match="not an nn.Module subclass; refused"):
        load_factory("os:system")
    with pytest.raises(SpaceError, match="is not 'package.module:Class'"):
        load_factory("/tmp/evil.py:Conv")


def test_a_missing_extra_names_it(monkeypatch, tmp_path, caplog):
    from supernet.core.extras import MissingExtra, require
    from supernet.search.plots import plot_pareto

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now fails as if it were not installed
    for name in ("matplotlib", "matplotlib.pyplot"):  # another test of this worker may have imported them
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtra) as info:
        require("onnx", "export --onnx")
    assert str(info.value).startswith("export --onnx needs the optional package 'onnx'")
    assert "pip install 'supernet[onnx]'" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(MissingExtra, match=r"supernet\[plots\]"):
        require("matplotlib.pyplot")
    # a search's figures are extras: without matplotlib they are skipped, said in one logged warning
    assert plot_pareto([{"metrics": {"macs": 1.0, "accuracy": 0.5}}], tmp_path / "pareto.png") is None
    assert len(caplog.records) == 1 and caplog.records[0].levelname == "WARNING"
    assert "pareto.png needs the optional package 'matplotlib'" in caplog.text
    with pytest.raises(ValueError, match="not an optional dependency"):
        require("numpy")


def test_cli_version_and_help_import_no_torch():
    """`supernet --version`/`--help` build the parser only: torch loads with the verbs that need it."""
    code = (
        "import sys\nfrom supernet.cli import build_parser\nfor argv in (['--version'], ['--help']):\n"
        "    try:\n        build_parser().parse_args(argv)\n    except SystemExit:\n        pass\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    out = python(code)
    assert out.returncode == 0 and out.stderr.strip() == "False", out.stderr


def test_cli_strategy_names_still_come_from_the_registry(tmp_path):
    """Checked once the config's imports ran (a strategy from `--import FILE` is one of them), in one line."""
    from supernet.cli import build_parser
    from tests.conftest import assert_one_line_error, run_main

    args = build_parser().parse_args(["search", "--supernet", "s", "--run-dir", "r", "--strategy", "ces"])
    assert args.strategy == "ces"
    r = run_main("search", "--supernet", str(tmp_path / "none"), "--run-dir", str(tmp_path / "r"), "--strategy", "x")
    assert_one_line_error(r, "unknown search strategy 'x'", "known: ces, evolution, nsga2, random")
    assert not (tmp_path / "r").exists()
