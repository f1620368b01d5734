"""Score an arch on a trained supernet: recalibrate its BatchNorms, then validation accuracy."""

from __future__ import annotations

import torch

from supernet.core.device import Runtime
from supernet.model.bn import default_recal_reset, recalibrate_path
from supernet.model.supernet import Supernet
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
        reset: bool | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        self.runtime = runtime if runtime is not None else Runtime()
        self.supernet = self.runtime.prepare(supernet)
        pin = self.runtime.is_cuda
        self.recal_batches = [x.pin_memory() if pin else x for x in recal_batches]
        self.val_batches = [(x.pin_memory(), y.pin_memory()) if pin else (x, y) for x, y in val_batches]
        self.reset = default_recal_reset(supernet.options.interchoice) if reset is None else reset
        self._by_path: dict[object, float] = {}  # with supernet.canonical: one score per network

    def evaluate(self, arch: Arch) -> float:
        if not getattr(self.supernet.options, "canonical", False):
            return self._score(arch)
        path = self.supernet.path_of(arch)  # every spelling of one network runs this path
        if path not in self._by_path:
            self._by_path[path] = self._score(path)
        return self._by_path[path]

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
