"""Data-parallel supernet training with torch.distributed (torchrun), without DDP's module wrapper.

Every rank draws the same paths each step (`step_rng(seed, epoch, step)`), so every rank has
gradients on exactly the same parameters. `sync_grads` averages exactly those (`grad` not None)
over the ranks with one flattened all-reduce before `optimizer.step()`. DDP with
`find_unused_parameters=True` would instead hand back zero gradients for the unsampled candidates,
and SGD's momentum and weight decay would then move weights that were never on the path.

Each rank's loss is the mean over its shard with its own BatchNorm batch statistics (per-rank BN, as
DDP does), so the update equals a single-process step whose gradient is the average over the
shards' gradients. Rank 0 writes checkpoints and logs (the others wait at a barrier); every rank
loads the checkpoint on resume.

Launch: `torchrun --nproc_per_node N -m supernet.cli train --config C --run-dir R` (gloo backend;
the toolkit trains on CPU); `train.batch_size` is per rank.
"""
from __future__ import annotations

import os
from typing import Callable, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from supernet.errors import SupernetError

T = TypeVar("T")


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Rank 0 of a torchrun launch, or a plain process."""
    return int(os.environ.get("RANK", "0")) == 0


class Distributed:
    """The process group seen by the training loop (see `supernet.train.loop.Local` for one process)."""

    def __init__(self, group: dist.ProcessGroup | None = None) -> None:
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        self.is_main = self.rank == 0

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        t = t.detach().clone()
        dist.all_reduce(t, group=self.group)
        return t / self.world_size

    def sync_grads(self, model: nn.Module) -> None:
        """Average the gradients that exist (all ranks ran the same paths) over the ranks."""
        allreduce_grads([p for p in model.parameters() if p.grad is not None], self.world_size, self.group)

    def barrier(self) -> None:
        dist.barrier(group=self.group)

    def broadcast_module(self, module: nn.Module) -> None:
        """Make every rank start from rank 0's parameters and buffers."""
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, 0, group=self.group)

    def on_main(self, fn: Callable[[], T]) -> T | None:
        """Run `fn` on rank 0; if it fails, every rank fails (rank 0 with its own error)."""
        error: BaseException | None = None
        result = None
        if self.is_main:
            try:
                result = fn()
            except BaseException as e:  # noqa: BLE001 - re-raised below, after telling the others
                error = e
        flag = torch.tensor([1.0 if error is not None else 0.0])
        dist.all_reduce(flag, group=self.group)
        if error is not None:
            raise error
        if flag.item():
            raise SupernetError("rank 0 failed to prepare the run (see its message)")
        return result


def allreduce_grads(params: list[nn.Parameter], world_size: int, group: dist.ProcessGroup | None = None) -> None:
    """Replace each `p.grad` by its mean over the ranks (one all-reduce of a flat buffer).

    The parameter lists must match across ranks; a cheap check (count and total size) turns a
    mismatch into an error instead of silently mixing gradients of different parameters.
    """
    check = torch.tensor([float(len(params)), float(sum(p.numel() for p in params))])
    spread = torch.stack([check, -check])
    dist.all_reduce(spread, op=dist.ReduceOp.MAX, group=group)
    if not torch.equal(spread[0], -spread[1]):
        raise SupernetError("ranks computed gradients for different parameters (did they sample different paths?)")
    if not params:
        return
    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, group=group)
    flat /= world_size
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def init_distributed(backend: str = "gloo") -> Distributed | None:
    """Join the torchrun process group when launched with WORLD_SIZE > 1; None for a single process."""
    if env_world_size() <= 1:
        return None
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Distributed()
