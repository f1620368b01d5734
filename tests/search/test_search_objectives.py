import random

import pytest

from supernet.core.errors import ConfigError
from supernet.search import (
    Constraint,
    Objective,
    Problem,
    constraint_from_cli,
    format_number,
)
from supernet.space import Arch


def test_constraint_bounds_inclusive():
    c = Constraint("macs", min=10, max=20)
    assert c.satisfied(10) and c.satisfied(20) and c.satisfied(15)
    assert not c.satisfied(9.999) and not c.satisfied(20.001) and not c.satisfied(float("nan"))
    assert Constraint("macs", max=5).satisfied(-1e9)
    assert Constraint("macs", min=5).satisfied(1e18)


def test_constraint_describe():
    assert Constraint("macs", max=330e6).describe() == "macs <= 330M"
    assert Constraint("accuracy", min=0.75).describe() == "accuracy >= 0.75"
    assert Constraint("params", 1e6, 2.5e6).describe() == "1M <= params <= 2.5M"
    assert format_number(1.5e9) == "1.5G" and format_number(2000) == "2K"


def test_constraint_rejects_min_above_max():
    with pytest.raises(ConfigError, match="min"):
        Constraint("macs", min=2, max=1)


def test_constraint_from_cli():
    assert constraint_from_cli("macs", None, 330e6) == Constraint("macs", None, 330e6)
    assert constraint_from_cli("macs", "1e6", "") == Constraint("macs", 1e6, None)
    with pytest.raises(ConfigError) as e:
        constraint_from_cli("macs", 400e6, 330e6)
    assert "\n" not in str(e.value) and "macs" in str(e.value) and "400M" in str(e.value)
    with pytest.raises(ConfigError, match="not a number"):
        constraint_from_cli("macs", "abc", None)


def test_problem_cheap_vs_eval_constraints():
    p = Problem(
        objectives=(Objective("accuracy", maximize=True),),
        constraints=(Constraint("macs", max=100), Constraint("accuracy", min=0.5)),
    )
    assert [c.metric for c in p.cheap_constraints] == ["macs"]
    assert [c.metric for c in p.eval_constraints] == ["accuracy"]
    assert p.check_cheap({"macs": 100})  # accuracy unknown yet: not checked
    assert not p.check_cheap({"macs": 101})
    assert p.check_all({"macs": 50, "accuracy": 0.5})
    assert not p.check_all({"macs": 50, "accuracy": 0.4})
    assert p.rank_key({"macs": 50, "accuracy": 0.9}) > p.rank_key({"macs": 50, "accuracy": 0.4})
    # an infeasible candidate ranks below a feasible one even with a better score
    p2 = Problem(constraints=(Constraint("accuracy", max=0.8),))
    assert p2.rank_key({"accuracy": 0.7}) > p2.rank_key({"accuracy": 0.9})


def test_problem_minimise_and_missing_metric():
    p = Problem(objectives=(Objective("macs", maximize=False),))
    assert p.score({"macs": 3}) > p.score({"macs": 4})
    with pytest.raises(ConfigError, match="latency_ms"):
        Problem(constraints=(Constraint("latency_ms", max=1),)).check_cheap({"macs": 1})
    with pytest.raises(ConfigError):
        Problem(objectives=())


def test_equal_accuracy_best_pick_is_the_cheaper_arch(small_space, costs):
    """Ties of accuracy go to the lower constrained cost (MACs here), whichever was seen first."""
    from supernet.search import create_strategy, run_search
    from supernet.search.strategy import Leaderboard

    problem = Problem(constraints=(Constraint("macs", max=1e12),))
    board = Leaderboard(problem)
    board.add(Arch(("a",)), {"accuracy": 0.5, "macs": 300.0, "params": 1.0})
    board.add(Arch(("b",)), {"accuracy": 0.5, "macs": 200.0, "params": 9.0})
    board.add(Arch(("c",)), {"accuracy": 0.4, "macs": 100.0, "params": 1.0})
    assert board.best[0] == Arch(("b",))
    assert [a for a, _ in board.top(3)] == [Arch(("b",)), Arch(("a",)), Arch(("c",))]
    flat = create_strategy("random", small_space, problem, costs, random.Random(0), num_samples=30)
    result = run_search(flat, lambda arch: {"accuracy": 0.5})
    assert result.best_metrics["macs"] == min(row["metrics"]["macs"] for row in result.history)
