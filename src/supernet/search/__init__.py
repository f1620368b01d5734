"""Architecture search over a trained supernet: problems, evaluators, strategies."""
from supernet.search.evaluator import Evaluator, MemoEvaluator, TableEvaluator, as_metrics
from supernet.search.evolution import Evolution, EvolutionConfig
from supernet.search.objectives import (
    EVAL_METRICS,
    Constraint,
    CostFn,
    Objective,
    Problem,
    constraint_from_cli,
    format_number,
)
from supernet.search.random_search import RandomSearch, RandomSearchConfig
from supernet.search.registry import create_strategy, list_strategies, make_config, register_strategy
from supernet.search.strategy import (
    Leaderboard,
    SearchResult,
    Strategy,
    StrategyBase,
    run_search,
    sample_feasible,
)

__all__ = [
    "EVAL_METRICS",
    "Constraint",
    "CostFn",
    "Evaluator",
    "Evolution",
    "EvolutionConfig",
    "Leaderboard",
    "MemoEvaluator",
    "Objective",
    "Problem",
    "RandomSearch",
    "RandomSearchConfig",
    "SearchResult",
    "Strategy",
    "StrategyBase",
    "TableEvaluator",
    "as_metrics",
    "constraint_from_cli",
    "create_strategy",
    "format_number",
    "list_strategies",
    "make_config",
    "register_strategy",
    "run_search",
    "sample_feasible",
]
