"""Training-loop hooks: the inter-choice weight split, and per-epoch one-shot model health."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from supernet.model.bn import recalibrate_path
from supernet.model.supernet import Supernet
from supernet.train.loop import Trainer, TrainHook, accuracy


class SplitHook(TrainHook):
    """Inter-choice split weights: at the start of epoch `split_epoch` the supernet's op weights are
    copied per previous choice (`Supernet.split_interchoice`); each copy continues with a copy of
    its original's optimizer state (momentum) and is trained separately from then on.

    The supernet's state dict carries the `interchoice_split` flag, so a resumed run (or
    `load_supernet`) rebuilds the split structure before loading the weights; the checkpoint meta
    records it too (`interchoice_split: true`)."""

    def __init__(self, net: Supernet, split_epoch: int) -> None:
        self.net, self.split_epoch = net, split_epoch

    def epoch_start(self, trainer: Trainer, epoch: int) -> None:
        if epoch >= self.split_epoch and not self.net.is_split:
            trainer.rebuild_optimizer(self.net.split_interchoice())

    def checkpoint_meta(self, trainer: Trainer) -> dict[str, Any]:
        return {"interchoice_split": self.net.is_split}


class HealthProbe(TrainHook):
    """SCARLET Fig. 3 (bottom): validation accuracies of `k` uniformly sampled one-shot models after
    each epoch, each scored after recalibrating its path's BatchNorm on `recal` batches.

    Adds `health_acc` (the k accuracies, in draw order) and `health_hist` (counts in 10 equal bins
    over [0, 1]) to the epoch row. The supernet's BatchNorm statistics are restored afterwards, so
    probing does not change training or its checkpoints. Runs on rank 0 only."""

    def __init__(
        self,
        net: Supernet,
        k: int,
        recal: Sequence[torch.Tensor],
        val: Sequence[tuple[torch.Tensor, torch.Tensor]],
        seed: int = 0,
        reset: bool = True,
    ) -> None:
        self.net, self.k, self.recal, self.val, self.seed = net, k, list(recal), list(val), seed
        self.reset = reset  # recalibrate from fresh statistics (`eval.recal_reset` as resolved for the method)

    def epoch_end(self, trainer: Trainer, epoch: int) -> dict[str, Any]:
        if not trainer.dist.is_main or self.k <= 0:
            return {}
        net = self.net
        rng = random.Random(f"health:{self.seed}:{epoch}")
        archs = [net.space.sample(rng) for _ in range(self.k)]
        saved = {name: b.clone() for name, b in net.named_buffers()}
        was_training = net.training
        accs = []
        try:
            for arch in archs:
                if self.recal:
                    recalibrate_path(net, arch, self.recal, self.reset, trainer.runtime)
                net.eval()
                accs.append(accuracy(lambda x, a=arch: net(x, a), self.val, trainer.runtime))
        finally:
            with torch.no_grad():
                for name, b in net.named_buffers():
                    b.copy_(saved[name])
            net.train(was_training)
        counts, _ = np.histogram(accs, bins=10, range=(0.0, 1.0))
        return {"health_acc": accs, "health_hist": counts.tolist()}
