"""Uniform sampling of archs whose additive cost (MACs) lies in a range, by dynamic programming.

Per-layer costs are quantised to `units` steps over the achievable range; `counts` tables give, for
each layer l and quantised partial sum s, the number of ways layers l.. reach s. A proposal draws
each layer's op with weight equal to the number of completions that keep the quantised total in
the target range: a uniform draw among the archs of that (slightly widened) range. The caller keeps
a proposal only if its exact cost falls in the range, which makes the result uniform over the
archs of the range: rejection sampling with a good proposal. Used by the uniform-constrained
training sampler (SPOS section 3) and by searches under a MACs budget.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np


class CostDP:
    """Quantised counting tables over `layer_costs` (one list of op costs per layer) plus `fixed`."""

    def __init__(self, layer_costs: Sequence[Sequence[float]], fixed: float = 0.0, units: int = 4096) -> None:
        self.layer_costs = [list(row) for row in layer_costs]
        self.low = fixed + sum(min(row) for row in self.layer_costs)
        self.high = fixed + sum(max(row) for row in self.layer_costs)
        self.quantum = max(1.0, (self.high - self.low) / units)
        self.offsets = [
            np.array([round((c - min(row)) / self.quantum) for c in row], dtype=np.int64) for row in self.layer_costs
        ]
        suffix = [np.ones(1)]
        for q in reversed(self.offsets):
            nxt = suffix[0]
            counts = np.zeros(len(nxt) + int(q.max()))
            for v in q:
                counts[v : v + len(nxt)] += nxt
            suffix.insert(0, counts / counts.max())  # rescaled: only ratios matter
        self.cumulative = [np.concatenate([[0.0], np.cumsum(s)]) for s in suffix]
        self.slack = len(self.layer_costs) // 2 + 1  # rounding error of a quantised sum, in quanta

    def target(self, low: float, high: float) -> tuple[int, int]:
        """The quantised range [low_q, high_q] that holds every arch with cost in [low, high)."""
        return (
            int(np.floor((low - self.low) / self.quantum)) - self.slack,
            int(np.ceil((high - self.low) / self.quantum)) + self.slack,
        )

    def none_within(self, low: float, high: float) -> bool:
        """True only when it is certain that no arch costs within [low, high]: integer costs counted
        without quantisation (small ranges), so the counts are exact."""
        exact = (
            self.quantum == 1.0
            and all(float(c).is_integer() for row in self.layer_costs for c in row)
            and float(self.low).is_integer()
        )
        if not exact:
            return False
        cum = self.cumulative[0]
        n = len(cum) - 1
        first = int(np.clip(math.ceil(low - self.low), 0, n))
        last = int(np.clip(math.floor(high - self.low) + 1, 0, n))
        return last <= first or cum[last] - cum[first] == 0

    def share(self, target: tuple[int, int]) -> float:
        """The share of all archs whose quantised cost lies in `target` (about the share within budget)."""
        cum = self.cumulative[0]
        n = len(cum) - 1
        low, high = np.clip(target[0], 0, n), np.clip(target[1] + 1, 0, n)
        return float((cum[high] - cum[low]) / cum[n]) if high > low else 0.0

    def propose(self, rng: random.Random, target: tuple[int, int]) -> list[int] | None:
        """Op indices of a uniform arch among those whose quantised cost lies in `target`, or None."""
        low, high = target
        indices, total = [], 0
        for layer, offsets in enumerate(self.offsets):
            cum = self.cumulative[layer + 1]
            n = len(cum) - 1
            rest = total + offsets
            weights = cum[np.clip(high - rest + 1, 0, n)] - cum[np.clip(low - rest, 0, n)]
            if not weights.sum() > 0:
                return None
            j = rng.choices(range(len(offsets)), weights=weights.tolist())[0]
            indices.append(j)
            total += int(offsets[j])
        return indices
