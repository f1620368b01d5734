"""The one registry shape: register (call and decorator), get with a one-line error, overwrite refused."""

from __future__ import annotations

import pytest

from supernet.core.errors import ConfigError, DatasetError, SpaceError
from supernet.core.registry import Registry


def test_register_call_and_decorator_forms():
    reg: Registry[object] = Registry("widget")
    reg.register("b", 2)

    @reg.register("a")
    def make_a():
        return 1

    assert reg.get("a") is make_a and reg.get("b") == 2
    assert reg.names() == ["a", "b"] and [n for n, _ in reg.items()] == ["b", "a"]  # items: registration order
    assert "a" in reg and "c" not in reg and len(reg) == 2


def test_unknown_name_is_one_line_listing_known_names():
    reg: Registry[int] = Registry("widget", SpaceError, hint="x.widget")
    reg.register("one", 1)
    reg.register("two", 2)
    with pytest.raises(SpaceError) as e:
        reg.get("three")
    assert str(e.value) == "unknown widget 'three' (x.widget); known: one, two"


def test_overwrite_is_refused_unless_asked():
    reg: Registry[int] = Registry("widget")
    reg.register("one", 1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("one", 2)
    reg.register("one", 3, overwrite=True)
    assert reg.get("one") == 3


def test_every_kind_uses_the_registry():
    from supernet.data.registry import DATASETS
    from supernet.ops.blocks import BLOCKS
    from supernet.ops.candidates import OP_PATTERNS
    from supernet.search import STRATEGIES
    from supernet.space import SPACES
    from supernet.train.sampler import SAMPLERS

    assert {"scarlet-s1", "spos-shufflenet", "nas-bench-201"} <= set(SPACES.names())
    assert {"evolution", "random", "nsga2", "ces"} <= set(STRATEGIES.names())
    assert {"uniform", "fair", "uniform-constrained", "path-dropout"} <= set(SAMPLERS.names())
    assert {"fashion-mnist", "cifar10", "folder"} <= set(DATASETS.names())
    assert {"ibn", "shuffle", "cell"} <= set(BLOCKS.names())  # ops/cells.py and ops/shufflenet.py registered
    assert len(OP_PATTERNS) >= 8
    with pytest.raises(DatasetError, match="unknown dataset 'nope' \\(data.name\\); known: "):
        DATASETS.get("nope")


def test_cli_strategy_choices_come_from_the_registry(monkeypatch):
    """A strategy registered from its own module is accepted by `--strategy` and gets `search.options`."""
    from supernet.cli import build_parser
    from supernet.config.schema import Config
    from supernet.jobs.search import search_problem, strategy_options
    from supernet.search import STRATEGIES, StrategySpec, register_strategy
    from supernet.search.random_search import RandomSearch, RandomSearchConfig

    monkeypatch.setattr(STRATEGIES, "_entries", dict(STRATEGIES._entries))
    register_strategy("mine", StrategySpec(RandomSearch, RandomSearchConfig))
    args = build_parser().parse_args(["search", "--run-dir", "r", "--strategy", "mine"])
    assert args.strategy == "mine"
    cfg = Config()
    cfg.search.strategy = "mine"
    cfg.search.options = {"topk": 7}
    assert strategy_options(cfg) == {"topk": 7}
    assert [o.metric for o in search_problem(cfg).objectives] == ["accuracy"]
    cfg.search.strategy = "nope"
    with pytest.raises(ConfigError, match="unknown search strategy 'nope'; known: .*mine"):
        strategy_options(cfg)
