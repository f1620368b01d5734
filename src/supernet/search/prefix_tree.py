"""Score many archs of a chain supernet at once by walking their prefix tree (issue 30.1).

Layer i of a chain supernet depends only on the choices of layers 0..i (its op and, with inter-choice
weights, the previous choices that select its bias or split copy). So are its recalibrated BatchNorm
statistics: in training mode a BatchNorm normalises with the batch's own statistics, so the input of
layer i on a recalibration batch is a function of the prefix alone, and with `eval.recal_reset` the
running statistics start from scratch. Archs that share a prefix therefore share its recalibration and
its validation activations, and a depth-first walk computes each tree node once:

    per node (stem, layer i with op o, head): reset the node's BatchNorms, run the cached input
    activations of the recalibration batches through it in training mode (same batches, same order,
    same cumulative average as `supernet.model.bn.recalibrate_bn`), keep their outputs for the
    children; then run the cached validation activations one layer further in eval mode.

Per batch these are the same ops in the same order as `Supernet.forward` runs for one arch, so the
scores equal the one-at-a-time scores exactly (fp32; under autocast the same casts happen at the
same layer boundaries).

Memory: the walk holds one activation of the recalibration images and one of a validation chunk per
tree level (at most `chunk_images` validation images, default 1,024). With several chunks, the
recalibrated statistics of each node are saved in the first pass (a few floats per channel) and
restored in the later ones, so the recalibration runs once per node.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from supernet.core.device import Runtime
from supernet.model.bn import path_batchnorms
from supernet.model.supernet import Supernet
from supernet.space.arch import Arch

DEFAULT_CHUNK_IMAGES = 1024
LayerForward = Callable[[torch.Tensor], torch.Tensor]
BatchNorms = list[nn.modules.batchnorm._BatchNorm]


@dataclass
class Node:
    """A prefix: `ops` is the first path through it (its layers beyond the prefix are not used)."""

    ops: tuple[str, ...]
    children: dict[str, Node] = field(default_factory=dict)


def prefix_tree(paths: Sequence[tuple[str, ...]]) -> Node:
    """The trie of `paths` (all of one length), children in first-seen order."""
    root = Node(paths[0])
    for ops in paths:
        node = root
        for op in ops:
            node = node.children.setdefault(op, Node(ops))
    return root


def unsplittable_reason(net: nn.Module, reset: bool) -> str | None:
    """Why `net` cannot be scored layer by layer (None: it can)."""
    if not isinstance(net, Supernet) or type(net).forward is not Supernet.forward:
        return f"a {type(net).__name__} is not a chain of layers"
    if not reset:
        return "eval.recal_reset=false (each score starts from the statistics the previous one left)"
    if net.biases is not None and any(j >= i for i, ctx in enumerate(net.biases.context) for j in ctx):
        return "its inter-choice biases depend on later layers' choices"
    if net.split_context is not None and any(j >= i for i, ctx in enumerate(net.split_context) for j in ctx):
        return "its split inter-choice weights depend on later layers' choices"
    return None


def _chunks(batches: list[tuple[torch.Tensor, torch.Tensor]], images: int) -> list[list[tuple]]:
    """Consecutive groups of whole batches, each at most `images` images (at least one batch)."""
    out: list[list[tuple]] = []
    for x, y in batches:
        if not out or sum(len(b[1]) for b in out[-1]) + len(y) > images:
            out.append([])
        out[-1].append((x, y))
    return out


def _state(bns: BatchNorms) -> list[dict[str, torch.Tensor]]:
    """The running statistics of `bns` (copies)."""
    keep = ("running_", "num_batches")
    return [{k: v.clone() for k, v in bn.state_dict().items() if k.startswith(keep)} for bn in bns]


def _restore(bns: BatchNorms, states: list[dict[str, torch.Tensor]]) -> None:
    for bn, state in zip(bns, states, strict=True):
        for k, v in state.items():
            getattr(bn, k).copy_(v)


class PrefixTreeScorer:
    """`score(paths) -> accuracies` of a `Supernet` (see the module docstring); paths as the
    supernet runs them (`path_of` applied), each of the supernet's length. With `metric="loss"` the
    scores are exp(-mean cross-entropy), summed batch by batch as `supernet_evaluator.mean_loss` does."""

    def __init__(
        self,
        net: Supernet,
        recal_batches: list[torch.Tensor],
        val_batches: list[tuple[torch.Tensor, torch.Tensor]],
        runtime: Runtime,
        chunk_images: int = DEFAULT_CHUNK_IMAGES,
        metric: str = "accuracy",
    ) -> None:
        self.net, self.runtime = net, runtime
        self.recal_batches, self.val_batches = recal_batches, val_batches
        self.chunk_images, self.metric = chunk_images, metric
        self._saved: dict[tuple, list[dict[str, torch.Tensor]]] = {}
        self._correct: dict[tuple[str, ...], torch.Tensor] = {}
        self._loss: dict[tuple[str, ...], float] = {}

    @torch.no_grad()
    def score(self, paths: Sequence[tuple[str, ...]], threshold: float | None = None) -> list[float]:
        """Accuracy of each path; `images_used` holds how many validation images each score used.

        Racing (`threshold`): the validation set is walked one batch at a time, and after each batch the
        paths that cannot reach `threshold` even if they classify every remaining image correctly are
        dropped, their score the accuracy on the images they saw (below that bound, so below
        `threshold`). Paths that are not dropped get exactly their full score. Racing needs
        `metric="accuracy"` (a loss has no such bound)."""
        if threshold is not None and self.metric != "accuracy":
            raise ValueError("racing bounds an accuracy; the loss metric scores every image")
        self.images_used: list[int] = []
        unique = list(dict.fromkeys(tuple(p) for p in paths))
        if not unique:
            return []
        for ops in unique:
            if len(ops) != len(self.net.choices):
                raise ValueError(f"arch has {len(ops)} layers, supernet has {len(self.net.choices)}")
        chunks = _chunks(self.val_batches, 1 if threshold is not None else self.chunk_images)
        total = sum(len(y) for _, y in self.val_batches)
        self._saved, self._correct = {}, {ops: torch.zeros((), dtype=torch.long) for ops in unique}
        self._loss = dict.fromkeys(unique, 0.0)
        seen, live = dict.fromkeys(unique, 0), unique
        was_training = self.net.training
        self.net.eval()
        try:
            for c, chunk in enumerate(chunks):
                self._walk_chunk(prefix_tree(live), chunk, first=c == 0, keep=len(chunks) > 1)
                for ops in live:
                    seen[ops] += sum(len(y) for _, y in chunk)
                if threshold is not None:
                    live = [p for p in live if (self._correct[p].item() + total - seen[p]) / total >= threshold]
                    if not live:
                        break
        finally:
            self.net.train(was_training)
            self._saved = {}
        self.images_used = [seen[tuple(p)] for p in paths]
        if self.metric == "loss":
            return [math.exp(-self._loss[tuple(p)] / max(1, seen[tuple(p)])) for p in paths]
        return [self._correct[tuple(p)].item() / max(1, seen[tuple(p)]) for p in paths]

    def _walk_chunk(self, root: Node, chunk: list[tuple], first: bool, keep: bool) -> None:
        recal = [self.runtime.batch(x) for x in self.recal_batches] if first else None
        val = [self.runtime.batch(x) for x, _ in chunk]
        labels = [self.runtime.labels(y) for _, y in chunk]
        net = self.net
        recal, val = self._node(("stem",), path_batchnorms(net.stem), net.stem, recal, val, first, keep)
        self._walk(root, 0, recal, val, labels, first, keep)

    def _walk(self, node: Node, depth: int, recal: list | None, val: list, labels: list, first: bool, keep: bool):
        net = self.net
        if depth == len(net.choices):
            self._leaf(node.ops, recal, val, labels, first, keep)
            return
        for op, child in node.children.items():
            ops = child.ops
            block = net.block(depth, op, ops)
            forward = self._layer_forward(depth, ops)
            out = self._node(ops[: depth + 1], path_batchnorms([block]), forward, recal, val, first, keep)
            self._walk(child, depth + 1, *out, labels, first, keep)

    def _layer_forward(self, i: int, ops: tuple[str, ...]) -> LayerForward:
        """Layer i exactly as `Supernet.forward` runs it."""
        net = self.net
        if net.biases is None and not net.is_split:
            return lambda x: net._run(i, ops[i], x)
        return lambda x: net.run_layer(i, ops, x)

    def _leaf(self, ops: tuple[str, ...], recal: list | None, val: list, labels: list, first: bool, keep: bool):
        head = self.net.head
        _, logits = self._node(("head", *ops), path_batchnorms(head), head, recal, val, first, keep)
        if self.metric == "loss":
            for out, y in zip(logits, labels, strict=True):
                self._loss[ops] += nn.functional.cross_entropy(out.float(), y, reduction="sum").item()
            return
        correct = self._correct[ops]
        for out, y in zip(logits, labels, strict=True):
            correct += (out.argmax(1) == y).sum().cpu()

    def _node(
        self, key: tuple, bns: BatchNorms, forward: LayerForward, recal: list | None, val: list, first: bool, keep: bool
    ) -> tuple[list | None, list]:
        """Recalibrate (first pass) or restore the node's BatchNorms; its recalibration and validation outputs."""
        recal_out = None
        if self.recal_batches and first:
            recal_out = self._recalibrate(bns, forward, recal or [])
            if keep:
                self._saved[key] = _state(bns)
        elif self.recal_batches:
            _restore(bns, self._saved[key])
        with self.runtime.autocast():
            val_out = [forward(x) for x in val]
        return recal_out, val_out

    def _recalibrate(self, bns: BatchNorms, forward: LayerForward, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """`supernet.model.bn.recalibrate_bn` (reset, cumulative average) for one node, keeping the outputs."""
        saved = [(bn.momentum, bn.training) for bn in bns]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        try:
            outputs = []
            for x in inputs:
                with self.runtime.autocast():
                    outputs.append(forward(x))
            return outputs
        finally:
            for bn, (momentum, training) in zip(bns, saved):
                bn.momentum = momentum
                bn.train(training)


def paths_by_part(net: nn.Module, archs: Sequence[Arch]) -> Iterator[tuple[nn.Module, list[int]]]:
    """(the supernet that runs them, indices into `archs`): one group for a plain supernet, one per
    part of a few-shot supernet."""
    part = getattr(net, "part", None)
    if part is None:
        yield net, list(range(len(archs)))
        return
    groups: dict[int, tuple[nn.Module, list[int]]] = {}
    for i, arch in enumerate(archs):
        p = part(arch)
        groups.setdefault(id(p), (p, []))[1].append(i)
    yield from groups.values()
