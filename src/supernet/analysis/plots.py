"""Figures for the analysis tools (matplotlib, Agg backend). Each function writes one PNG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from supernet.core.extras import MissingExtra, pyplot
from supernet.core.logs import get_logger

logger = get_logger(__name__)


def figures_available(verb: str) -> bool:
    """Whether `supernet[plots]` is installed; without it, says on stderr that `verb`'s figures are skipped
    (a command's JSON results are not extras: it writes them and goes on, as `search` does)."""
    try:
        pyplot(f"{verb}'s figures")
    except MissingExtra as e:
        logger.warning(f"{verb}: figures not written: {e}")
        return False
    return True


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
    return path


def plot_scatter(
    predictions: Mapping[str, Sequence[float]],
    true: Sequence[float],
    path: str | Path,
    taus: Mapping[str, float] | None = None,
) -> Path:
    """Supernet-predicted accuracy (x) vs stand-alone ground truth (y), one colour per supernet."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, pred in predictions.items():
        tau = (taus or {}).get(label)
        suffix = f" (tau {tau:.3f})" if tau is not None and np.isfinite(tau) else ""
        ax.scatter(pred, true, s=14, alpha=0.7, label=f"{label}{suffix}")
    ax.set_xlabel("supernet accuracy (predicted)")
    ax.set_ylabel("stand-alone val accuracy (ground truth)")
    ax.set_title(f"predicted vs true ({len(true)} archs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def plot_improvement(curves: Mapping[str, Sequence[float]], path: str | Path, max_n: int | None = None) -> Path:
    """Improvement vs number of archs kept (inter-choice paper Fig. 3/4; x axis reversed: pruning)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, curve in curves.items():
        curve = np.asarray(curve, dtype=float)
        n = np.arange(1, len(curve) + 1)
        ax.plot(n, curve, marker=".", ms=4, label=label)
    if max_n is not None:
        ax.set_xlim(left=max_n + 0.5, right=0.5)
    else:
        ax.invert_xaxis()
    ax.axhline(0, c="0.5", lw=0.8, ls="--")
    ax.axhline(1, c="0.5", lw=0.8, ls=":")
    ax.set_xlabel("archs kept (best predicted first)")
    ax.set_ylabel("improvement (0 = mean of all, 1 = best)")
    ax.set_title("improvement metric")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def plot_heatmap(
    matrix: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    path: str | Path,
    title: str = "",
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "viridis",
    fmt: str = "{:.2f}",
) -> Path:
    """An annotated heat map (similarity matrices, self-consistency tables, op frequencies)."""
    plt = pyplot()
    m = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(cols) + 2.5), max(3.0, 0.5 * len(rows) + 1.5)))
    im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), [str(c) for c in cols], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=8)
    if m.size <= 400:
        lo, hi = np.nanmin(m) if np.isfinite(m).any() else 0, np.nanmax(m) if np.isfinite(m).any() else 1
        mid = (lo + hi) / 2
        for (i, j), v in np.ndenumerate(m):
            if np.isfinite(v):
                ax.text(
                    j,
                    i,
                    fmt.format(v),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if (cmap == "viridis") == (v > mid) else "white",
                )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)
