"""A search's score source as one value, whatever stands behind it: a supernet, a table, a benchmark or a predictor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supernet.search.objectives import Metrics
from supernet.space import Arch

ScoreMany = Callable[[list[Arch]], list[Metrics]]


@dataclass(frozen=True)
class Scores:
    """Where a search's scores come from: one arch, a batch (None: one arch at a time), the journal key they are
    kept under, the shared evaluation cache they also go to (None: the run's journal only) and what result.json
    says of them."""

    evaluate: Callable[[Arch], Metrics]
    evaluate_many: ScoreMany | None
    key: str
    cache: Path | None
    source: dict[str, Any]
