"""Search plots: PNG files written from results, histories and Pareto lists."""

import math
import random

from supernet.search import SCARLET_OBJECTIVES, Constraint, Problem, create_strategy, run_search
from supernet.search.plots import best_so_far, plot_pareto, plot_progress

PNG = b"\x89PNG\r\n\x1a\n"


def test_plots_are_written(tmp_path, small_space, costs, make_target_eval):
    evaluate = make_target_eval(small_space.sample(random.Random(0)))
    problem = Problem(SCARLET_OBJECTIVES, (Constraint("macs", max=60e6),))
    nsga = run_search(
        create_strategy(
            "nsga2", small_space, problem, costs, random.Random(0), population=8, generations=3, acc_min=None
        ),
        evaluate,
    )
    rand = run_search(
        create_strategy("random", small_space, problem, costs, random.Random(0), num_samples=50), evaluate
    )
    outputs = [
        plot_pareto(nsga, tmp_path / "pareto.png"),
        plot_pareto(nsga.history, tmp_path / "history.png"),
        plot_pareto(nsga.pareto, tmp_path / "front.png"),
        plot_pareto(nsga.to_dict(), tmp_path / "dict.png", x="params"),
        plot_progress({"nsga2": nsga, "random": rand.history, "dict": rand.to_dict()}, tmp_path / "progress.png"),
    ]
    for path in outputs:
        assert path.exists() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


def test_best_so_far():
    rows = [
        {"metrics": {"accuracy": 0.2}, "feasible": False},
        {"metrics": {"accuracy": 0.1}, "feasible": True},
        {"metrics": {"accuracy": 0.3}, "feasible": True},
        {"metrics": {"accuracy": 0.2}, "feasible": True},
    ]
    curve = best_so_far(rows)
    assert math.isnan(curve[0]) and curve[1:] == [0.1, 0.3, 0.3]
    assert best_so_far(rows, feasible_only=False) == [0.2, 0.2, 0.3, 0.3]
    assert best_so_far(rows, maximize=False)[1:] == [0.1, 0.1, 0.1]
