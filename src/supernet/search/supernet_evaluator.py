"""Score an arch on a trained supernet: recalibrate its BatchNorms, then validation accuracy.

Three scoring choices (issue 31), each a setting of the `eval` section:
- `twins`: how a network with several spellings is scored. In a chain space with shape-keeping identities,
  moving an identity inside a stage gives the same network (NAS-Bench-Macro: 6,561 strings, 3,969 networks),
  but a supernet trained on strings holds different weights for each spelling. `spelling` scores the string
  as given; `canonical` scores the network's one canonical spelling (identities at the stage's end);
  `mean` averages over every spelling of the network (at most `MAX_TWINS`, in order).
- `bn`: `recalibrate` (SPOS: running statistics re-estimated on the recalibration images) or `batch` (each
  validation batch normalised with its own statistics, Yu et al. 2020; no recalibration).
- `metric`: `accuracy`, or `loss`: exp(-mean cross-entropy), the geometric-mean probability of the true
  class, which orders archs as the validation loss does and stays in [0, 1] like an accuracy.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import statistics
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from supernet.core.device import Runtime
from supernet.core.errors import ConfigError
from supernet.core.logs import get_logger
from supernet.model.bn import default_recal_reset, path_batchnorms, recalibrate_path
from supernet.model.supernet import Supernet
from supernet.search.prefix_tree import DEFAULT_CHUNK_IMAGES, PrefixTreeScorer, paths_by_part, unsplittable_reason
from supernet.space.arch import Arch
from supernet.space.opnames import IDENTITY
from supernet.space.space import SearchSpace
from supernet.train.loop import accuracy

logger = get_logger(__name__)

TWINS = ("spelling", "canonical", "mean")
BN_MODES = ("recalibrate", "batch")
METRICS = ("accuracy", "loss")
MAX_TWINS = 64  # `twins: mean` averages over at most this many spellings of one network


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
        reset: bool | None = None,
        runtime: Runtime | None = None,
        twins: str = "spelling",
        bn: str = "recalibrate",
        metric: str = "accuracy",
        chunk_images: int = DEFAULT_CHUNK_IMAGES,
    ) -> None:
        for name, value, allowed in (("twins", twins, TWINS), ("bn", bn, BN_MODES), ("metric", metric, METRICS)):
            if value not in allowed:
                raise ConfigError(f"eval.{name} must be one of {', '.join(allowed)}, got {value!r}")
        if twins != "spelling" and (supernet.space.topology != "chain" or supernet.options.identity != "skip"):
            raise ConfigError(
                f"eval.twins: {twins} needs a chain space with supernet.identity: skip (only there do moved "
                f"identities give the same network); use eval.twins: spelling"
            )
        self.runtime = runtime if runtime is not None else Runtime()
        self.supernet = self.runtime.prepare(supernet)
        pin = self.runtime.is_cuda
        self.recal_batches = [x.pin_memory() if pin else x for x in recal_batches]
        self.val_batches = [(x.pin_memory(), y.pin_memory()) if pin else (x, y) for x, y in val_batches]
        self.reset = default_recal_reset(supernet.options.interchoice) if reset is None else reset
        self.twins, self.bn, self.metric = twins, bn, metric
        self._by_path: dict[object, float] = {}  # one score per spelling scored (not with twins: spelling)
        self.chunk_images = chunk_images
        self._said_fallback = False

    def evaluate(self, arch: Arch) -> float:
        if not self._scores_twins:
            return self._score(arch)
        spellings = self._spellings(arch)
        for path in spellings:
            if path not in self._by_path:
                self._by_path[path] = self._score(path)
        return statistics.fmean(self._by_path[p] for p in spellings)

    @property
    def _scores_twins(self) -> bool:
        """Whether a score is made of the scores of one or more other spellings (kept in `_by_path`)."""
        return getattr(self.supernet.options, "canonical", False) or self.twins != "spelling"

    def _spellings(self, arch: Arch) -> list[Arch]:
        """The strings whose scores make `arch`'s (`eval.twins`; a canonical supernet runs every spelling of
        one network as one path)."""
        if getattr(self.supernet.options, "canonical", False):
            return [self.supernet.path_of(arch)]
        if self.twins == "canonical":
            return [self.supernet.space.canonical(arch)]
        return equivalent_spellings(self.supernet.space, arch)

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
        every other arch gets its full score. Without the prefix tree, and with `eval.metric: loss` or
        `eval.twins` other than `spelling` (a score made of several), every score is full."""
        full = self.val_images
        reason = self._scoring_choice() or next(
            (r for net, _ in paths_by_part(self.supernet, archs) if (r := unsplittable_reason(net, self.reset))),
            None,
        )
        if reason is not None:
            self._say_fallback(reason)
            return [(self.evaluate(a), full) for a in archs]
        if self.metric != "accuracy":
            threshold = None
        if self.twins == "spelling":
            return self._race_paths(archs, threshold)
        spellings = [self._spellings(a) for a in archs]
        todo = list(dict.fromkeys(p for spelled in spellings for p in spelled if p not in self._by_path))
        for path, (score, _) in zip(todo, self._race_paths(todo, None), strict=True):
            self._by_path[path] = score
        return [(statistics.fmean(self._by_path[p] for p in spelled), full) for spelled in spellings]

    def _race_paths(self, archs: Sequence[Arch], threshold: float | None) -> list[tuple[float, int]]:
        """`race_many` of the strings as given (a canonical supernet: the paths they run), on the prefix tree."""
        full = self.val_images
        canonical = getattr(self.supernet.options, "canonical", False)
        out: list[tuple[float, int]] = [(0.0, 0)] * len(archs)
        for net, idx in paths_by_part(self.supernet, archs):
            paths = [net.path_of(archs[i]) for i in idx]
            todo = [p for p in dict.fromkeys(paths) if not canonical or p not in self._by_path]
            scorer = PrefixTreeScorer(
                net, self.recal_batches, self.val_batches, self.runtime, self.chunk_images, self.metric
            )
            scores = scorer.score([p.ops for p in todo], threshold)
            found = {p: (s, n) for p, s, n in zip(todo, scores, scorer.images_used, strict=True)}
            if canonical:  # only full scores are remembered
                self._by_path.update({p: s for p, (s, n) in found.items() if n == full})
            for i, path in zip(idx, paths, strict=True):
                out[i] = found[path] if path in found else (self._by_path[path], full)
        return out

    def _scoring_choice(self) -> str | None:
        """Why the prefix tree does not apply to this evaluator's scoring choices (it recalibrates BN; each
        validation batch's own statistics are scored one arch at a time), or None."""
        return None if self.bn == "recalibrate" else f"eval.bn: {self.bn}"

    def _say_fallback(self, reason: str) -> None:
        if not self._said_fallback:
            logger.warning(f"evaluate: scoring one arch at a time, not on the prefix tree: {reason}")
            self._said_fallback = True

    def _score(self, arch: Arch) -> float:
        net = self.supernet
        if self.recal_batches and self.bn == "recalibrate":
            recalibrate_path(net, arch, self.recal_batches, self.reset, self.runtime)
        was_training = net.training
        net.eval()
        try:
            with batch_statistics(path_batchnorms(net.path_modules(arch)), self.bn == "batch"):
                if self.metric == "loss":
                    return math.exp(-mean_loss(lambda x: net(x, arch), self.val_batches, self.runtime))
                return accuracy(lambda x: net(x, arch), self.val_batches, self.runtime)
        finally:
            net.train(was_training)


@contextlib.contextmanager
def batch_statistics(batchnorms: list[nn.modules.batchnorm._BatchNorm], on: bool) -> Iterator[None]:
    """BatchNorms normalise with each batch's own statistics while `on`; running statistics stay untouched."""
    saved = [(bn.training, bn.momentum, _tracked(bn)) for bn in batchnorms]
    if on:
        for bn in batchnorms:
            bn.train()
            bn.momentum = 0.0  # running = (1 - 0) * running + 0 * batch: unchanged
    try:
        yield
    finally:
        for bn, (training, momentum, tracked) in zip(batchnorms, saved):
            bn.train(training)
            bn.momentum = momentum
            if tracked is not None:
                bn.num_batches_tracked.copy_(tracked)


def _tracked(bn: nn.modules.batchnorm._BatchNorm) -> torch.Tensor | None:
    return bn.num_batches_tracked.clone() if bn.num_batches_tracked is not None else None


@torch.no_grad()
def mean_loss(forward, batches, runtime: Runtime) -> float:  # noqa: ANN001  (as `accuracy`)
    """Mean cross-entropy of `forward` over `batches`."""
    total, count = 0.0, 0
    for x, y in batches:
        with runtime.autocast():
            logits = forward(runtime.batch(x))
        total += nn.functional.cross_entropy(logits.float(), runtime.labels(y), reduction="sum").item()
        count += len(y)
    return total / max(1, count)


def equivalent_spellings(space: SearchSpace, arch: Arch, limit: int = MAX_TWINS) -> list[Arch]:
    """Every spelling of `arch`'s network, in order: per stage, its first layer as given and the other
    layers' non-identity ops in their order at any positions that allow them, identities elsewhere.
    Only shape-keeping identities move (a stage's layers after its first keep the shape)."""
    per_stage = []
    for stage in space.stages():
        first, rest = stage[0], list(stage[1:])
        ops = [arch.ops[i] for i in rest if arch.ops[i] != IDENTITY]
        options = []
        for where in itertools.combinations(rest, len(ops)):
            placed = dict(zip(where, ops))
            spelled = [placed.get(i, IDENTITY) for i in rest]
            if all(op in space.layers[i].choices for i, op in zip(rest, spelled)):
                options.append((arch.ops[first], *spelled))
        per_stage.append(options)
    out = []
    for parts in itertools.product(*per_stage):
        out.append(Arch(tuple(op for part in parts for op in part)))
        if len(out) == limit:
            break
    return out
