"""BatchNorm recalibration before scoring an arch (SPOS section 3)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from supernet.core.device import Runtime
from supernet.space.arch import Arch


def path_batchnorms(modules: Iterable[nn.Module]) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for block in modules for m in block.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def default_recal_reset(interchoice: str) -> bool:
    """Whether BN recalibration starts from fresh statistics when the config does not say: yes for
    plain supernets (SPOS section 3 re-estimates them on a random subset of the training data), no
    with inter-choice weights (`bias`/`split`), whose paper (Appendix B) updates the supernet's
    statistics with 20 forward passes and found resetting them "detrimental in nearly all tested cases"."""
    return interchoice == "none"


@torch.no_grad()
def recalibrate_bn(
    forward: Callable[[torch.Tensor], torch.Tensor],
    batchnorms: list[nn.modules.batchnorm._BatchNorm],
    batches: Iterable[torch.Tensor],
    reset: bool = True,
    runtime: Runtime | None = None,
) -> None:
    """Re-estimate running statistics of `batchnorms` from `batches` with a cumulative average.

    With `reset`, statistics start from scratch (momentum=None averages all batches equally);
    without it, the supernet's statistics are updated with the usual momentum. Batches go to
    `runtime`'s device and run under its autocast (BatchNorm keeps float32 statistics).
    """
    runtime = runtime if runtime is not None else Runtime()
    saved = [(bn.momentum, bn.training) for bn in batchnorms]
    for bn in batchnorms:
        if reset:
            bn.reset_running_stats()
            bn.momentum = None
        bn.train()
    try:
        for x in batches:
            with runtime.autocast():
                forward(runtime.batch(x))
    finally:
        for bn, (momentum, training) in zip(batchnorms, saved):
            bn.momentum = momentum
            bn.train(training)


def recalibrate_path(
    supernet: nn.Module, arch: Arch, batches: Iterable[torch.Tensor], reset: bool = True, runtime: Runtime | None = None
) -> None:
    """Recalibrate only the BatchNorms on `arch`'s path of a supernet."""
    bns = path_batchnorms(supernet.path_modules(arch))
    was_training = supernet.training
    supernet.eval()
    try:
        recalibrate_bn(lambda x: supernet(x, arch), bns, batches, reset, runtime)
    finally:
        supernet.train(was_training)
