"""Score an arch on a trained supernet: recalibrate its BatchNorms, then validation accuracy."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from supernet.model.bn import recalibrate_path
from supernet.model.supernet import Supernet
from supernet.space.arch import Arch
from supernet.train.loop import accuracy


@dataclass(frozen=True)
class EvalSettings:
    """What an evaluation depends on besides the weights (part of the evaluation cache key)."""

    recal_batches: int = 20
    recal_batch_size: int = 128
    recal_reset: bool = True
    val_limit: int | None = None
    seed: int = 0


class SupernetEvaluator:
    """SPOS section 3: BN statistics re-estimated on a fixed, seeded subset of training data.

    The recalibration and validation batches are materialised once, so every candidate sees
    exactly the same data and no time is spent on data handling per candidate.
    """

    def __init__(self, supernet: Supernet, recal_batches: list[torch.Tensor],
                 val_batches: list[tuple[torch.Tensor, torch.Tensor]], reset: bool = True) -> None:
        self.supernet = supernet
        self.recal_batches = recal_batches
        self.val_batches = val_batches
        self.reset = reset

    def evaluate(self, arch: Arch) -> float:
        net = self.supernet
        if self.recal_batches:
            recalibrate_path(net, arch, self.recal_batches, self.reset)
        was_training = net.training
        net.eval()
        try:
            return accuracy(lambda x: net(x, arch), self.val_batches)
        finally:
            net.train(was_training)
