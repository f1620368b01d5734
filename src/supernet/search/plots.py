"""Search plots (matplotlib, Agg backend): a Pareto plot and best-so-far progress curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from supernet.core.extras import MissingExtra, pyplot
from supernet.core.logs import get_logger
from supernet.search.strategy import SearchResult

Points = list[dict[str, float]]
logger = get_logger(__name__)


def _points(data: Any) -> Points:
    """Metrics dicts from a SearchResult (or its dict), a history (rows with "metrics") or a
    pareto list of (arch, metrics) pairs / {"arch", "metrics"} entries."""
    if isinstance(data, SearchResult):
        return [dict(r["metrics"]) for r in data.history]
    if isinstance(data, Mapping) and "history" in data:
        return [dict(r["metrics"]) for r in data["history"]]
    return [dict(row["metrics"]) if isinstance(row, Mapping) else dict(row[1]) for row in data]


def _pyplot(path: str | Path) -> Any:
    """pyplot, or None (a warning) without `supernet[plots]`: a search's figures are extras, its
    result.json is not."""
    try:
        return pyplot(f"{Path(path).name}")
    except MissingExtra as e:
        logger.warning(f"search: not written: {e}")
        return None


def _front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points not dominated in (min x, max y)."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    if len(x) == 0:
        return np.array([], dtype=int)
    return NonDominatedSorting().do(np.column_stack([x, -y]), only_non_dominated_front=True)


def plot_pareto(
    data: Any, path: str | Path, x: str = "macs", y: str = "accuracy", title: str | None = None
) -> Path | None:
    """Every evaluated arch as `y` vs `x`, the non-dominated front (min x, max y) highlighted."""
    plt = _pyplot(path)
    if plt is None:
        return None
    points = _points(data)
    points = [p for p in points if x in p and y in p]
    xs = np.array([p[x] for p in points], dtype=float)
    ys = np.array([p[y] for p in points], dtype=float)
    front = _front(xs, ys)
    order = front[np.argsort(xs[front], kind="stable")] if len(front) else front
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(xs, ys, s=8, c="0.6", alpha=0.6, label=f"evaluated ({len(xs)})")
    if len(order):
        ax.plot(xs[order], ys[order], "o-", c="tab:red", ms=4, label=f"Pareto front ({len(order)})")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    return _save(fig, ax, title or f"{y} vs {x}", path)


def best_so_far(
    history: Sequence[Mapping[str, Any]], metric: str = "accuracy", maximize: bool = True, feasible_only: bool = True
) -> list[float]:
    """Best `metric` after each evaluation (NaN until the first feasible one)."""
    best, out = None, []
    for row in history:
        value = row["metrics"].get(metric)
        if value is not None and (row.get("feasible", True) or not feasible_only):
            if best is None or (value > best if maximize else value < best):
                best = value
        out.append(float("nan") if best is None else float(best))
    return out


def plot_progress(
    histories: Mapping[str, Any],
    path: str | Path,
    metric: str = "accuracy",
    maximize: bool = True,
    title: str | None = None,
) -> Path | None:
    """Best `metric` so far vs number of evaluations, one curve per strategy (name -> history,
    SearchResult or its dict)."""
    plt = _pyplot(path)
    if plt is None:
        return None

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, history in histories.items():
        if isinstance(history, SearchResult):
            history = history.history
        elif isinstance(history, Mapping):
            history = history["history"]
        curve = best_so_far(history, metric, maximize)
        ax.plot(np.arange(1, len(curve) + 1), curve, label=name)
    ax.set_xlabel("evaluations")
    ax.set_ylabel(f"best {metric}")
    return _save(fig, ax, title or f"best {metric} vs evaluations", path)


def _save(fig: Any, ax: Any, title: str, path: str | Path) -> Path:
    """Title, grid and legend, then write the PNG and free the figure."""
    plt = pyplot()

    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
