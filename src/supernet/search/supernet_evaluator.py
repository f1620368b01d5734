"""Score an arch on a trained supernet: recalibrate its BatchNorms, then validation accuracy."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch

from supernet.core.device import Runtime
from supernet.model.bn import recalibrate_path
from supernet.model.supernet import Supernet
from supernet.search.prefix_tree import DEFAULT_CHUNK_IMAGES, PrefixTreeScorer, paths_by_part, unsplittable_reason
from supernet.space.arch import Arch
from supernet.train.loop import accuracy


class SupernetEvaluator:
    """SPOS section 3: BN statistics re-estimated on a fixed, seeded subset of training data.

    The recalibration and validation batches are materialised once, so every candidate sees
    exactly the same data and no time is spent on data handling per candidate. On CUDA they are
    pinned once, so each candidate's copies to the device are asynchronous.
    """

    def __init__(
        self,
        supernet: Supernet,
        recal_batches: list[torch.Tensor],
        val_batches: list[tuple[torch.Tensor, torch.Tensor]],
        reset: bool = True,
        runtime: Runtime | None = None,
        chunk_images: int = DEFAULT_CHUNK_IMAGES,
    ) -> None:
        self.runtime = runtime if runtime is not None else Runtime()
        self.supernet = self.runtime.prepare(supernet)
        pin = self.runtime.is_cuda
        self.recal_batches = [x.pin_memory() if pin else x for x in recal_batches]
        self.val_batches = [(x.pin_memory(), y.pin_memory()) if pin else (x, y) for x, y in val_batches]
        self.reset = reset
        self._by_path: dict[object, float] = {}  # with supernet.canonical: one score per network
        self.chunk_images = chunk_images
        self._said_fallback = False

    def evaluate(self, arch: Arch) -> float:
        if not getattr(self.supernet.options, "canonical", False):
            return self._score(arch)
        path = self.supernet.path_of(arch)  # every spelling of one network runs this path
        if path not in self._by_path:
            self._by_path[path] = self._score(path)
        return self._by_path[path]

    @property
    def val_images(self) -> int:
        return sum(len(y) for _, y in self.val_batches)

    def evaluate_many(self, archs: Sequence[Arch]) -> list[float]:
        """The scores `evaluate` gives, computed together on the archs' prefix tree
        (`supernet.search.prefix_tree`); one at a time where the supernet cannot be split by layer."""
        return [score for score, _ in self.race_many(archs, None)]

    def race_many(self, archs: Sequence[Arch], threshold: float | None) -> list[tuple[float, int]]:
        """(score, validation images it used) per arch, as `evaluate_many` but racing against `threshold`
        (`PrefixTreeScorer.score`): an arch that cannot reach it stops early with its partial accuracy;
        every other arch gets its full score. Without the prefix tree, every score is full."""
        full = self.val_images
        groups = list(paths_by_part(self.supernet, archs))
        reason = next((r for net, _ in groups if (r := unsplittable_reason(net, self.reset))), None)
        if reason is not None:
            self._say_fallback(reason)
            return [(self.evaluate(a), full) for a in archs]
        canonical = getattr(self.supernet.options, "canonical", False)
        out: list[tuple[float, int]] = [(0.0, 0)] * len(archs)
        for net, idx in groups:
            paths = [net.path_of(archs[i]) for i in idx]
            todo = [p for p in dict.fromkeys(paths) if not canonical or p not in self._by_path]
            scorer = PrefixTreeScorer(net, self.recal_batches, self.val_batches, self.runtime, self.chunk_images)
            scores = scorer.score([p.ops for p in todo], threshold)
            found = {p: (s, n) for p, s, n in zip(todo, scores, scorer.images_used, strict=True)}
            if canonical:  # only full scores are remembered
                self._by_path.update({p: s for p, (s, n) in found.items() if n == full})
            for i, path in zip(idx, paths, strict=True):
                out[i] = found[path] if path in found else (self._by_path[path], full)
        return out

    def _say_fallback(self, reason: str) -> None:
        if not self._said_fallback:
            print(f"evaluate: scoring one arch at a time, not on the prefix tree: {reason}", file=sys.stderr)
            self._said_fallback = True

    def _score(self, arch: Arch) -> float:
        net = self.supernet
        if self.recal_batches:
            recalibrate_path(net, arch, self.recal_batches, self.reset, self.runtime)
        was_training = net.training
        net.eval()
        try:
            return accuracy(lambda x: net(x, arch), self.val_batches, self.runtime)
        finally:
            net.train(was_training)
