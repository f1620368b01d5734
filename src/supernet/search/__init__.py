"""Architecture search over a trained supernet: problems, evaluators, strategies."""

from supernet.search.ces import CES_OBJECTIVES, Ces, CesConfig
from supernet.search.evaluator import Evaluator, MemoEvaluator, TableEvaluator, as_metrics
from supernet.search.evolution import Evolution, EvolutionConfig
from supernet.search.journal import Journal, evaluation_key, run_journaled
from supernet.search.nsga2 import SCARLET_OBJECTIVES, Nsga2, Nsga2Config
from supernet.search.objectives import (
    EVAL_METRICS,
    Constraint,
    CostFn,
    Objective,
    Problem,
    constraint_from_cli,
    format_number,
)
from supernet.search.predictor import AdditivePredictor, PairPredictor, predictor_sample
from supernet.search.random_search import RandomSearch, RandomSearchConfig
from supernet.search.registry import (
    STRATEGIES,
    StrategySpec,
    create_strategy,
    list_strategies,
    make_config,
    register_strategy,
)
from supernet.search.strategy import (
    Leaderboard,
    SearchResult,
    Strategy,
    StrategyBase,
    run_search,
    sample_feasible,
)

__all__ = [
    "STRATEGIES",
    "AdditivePredictor",
    "PairPredictor",
    "StrategySpec",
    "CES_OBJECTIVES",
    "EVAL_METRICS",
    "SCARLET_OBJECTIVES",
    "Ces",
    "CesConfig",
    "Constraint",
    "CostFn",
    "Evaluator",
    "Evolution",
    "EvolutionConfig",
    "Journal",
    "Leaderboard",
    "MemoEvaluator",
    "Nsga2",
    "Nsga2Config",
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
    "evaluation_key",
    "format_number",
    "list_strategies",
    "make_config",
    "predictor_sample",
    "register_strategy",
    "run_journaled",
    "run_search",
    "sample_feasible",
]
