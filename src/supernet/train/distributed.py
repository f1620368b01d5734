"""Data-parallel supernet training with torch.distributed (torchrun), without DDP's module wrapper.

Every rank draws the same paths each step (`step_rng(seed, epoch, step)`), so every rank has
gradients on exactly the same parameters. `sync_grads` averages exactly those (`grad` not None)
over the ranks with all-reduces of flattened buckets (`train.allreduce_bucket_mb`) before
`optimizer.step()`. DDP with
`find_unused_parameters=True` would instead hand back zero gradients for the unsampled candidates,
and SGD's momentum and weight decay would then move weights that were never on the path.

Each rank's loss is the mean over its shard with its own BatchNorm batch statistics (per-rank BN, as
DDP does), so the update equals a single-process step whose gradient is the average over the
shards' gradients. Rank 0 writes checkpoints and logs (the others wait at a barrier); every rank
loads the checkpoint on resume.

Launch: `torchrun --nproc_per_node N -m supernet.cli train --config C --run-dir R`; NCCL when the
run's device is CUDA (each rank on cuda:LOCAL_RANK), gloo on CPUs; `train.batch_size` is per rank.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from supernet.core.distributed_env import env_world_size, is_main_process, join_process_group
from supernet.core.errors import SupernetError

T = TypeVar("T")
BUCKET_MB = 25.0  # DDP's default bucket size
__all__ = ["Distributed", "allreduce_grads", "buckets", "env_world_size", "init_distributed", "is_main_process"]


class Distributed:
    """The process group seen by the training loop (see `supernet.train.loop.Local` for one process).

    Small control tensors (loss means, flags, checks) live on `device`: NCCL only reduces CUDA tensors.
    """

    def __init__(
        self, group: dist.ProcessGroup | None = None, device: torch.device | str = "cpu", bucket_mb: float = BUCKET_MB
    ) -> None:
        self.group = group
        self.device = torch.device(device)
        self.bucket_mb = bucket_mb
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        self.is_main = self.rank == 0

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        t = t.detach().to(self.device, copy=True)
        dist.all_reduce(t, group=self.group)
        return t / self.world_size

    def sync_grads(self, model: nn.Module) -> None:
        """Average the gradients that exist (all ranks ran the same paths) over the ranks."""
        allreduce_grads(
            [p for p in model.parameters() if p.grad is not None], self.world_size, self.group, self.bucket_mb
        )

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
        flag = torch.tensor([1.0 if error is not None else 0.0], device=self.device)
        dist.all_reduce(flag, group=self.group)
        if error is not None:
            raise error
        if flag.item():
            raise SupernetError("rank 0 failed to prepare the run (see its message)")
        return result


def buckets(tensors: list[torch.Tensor], bucket_mb: float = BUCKET_MB) -> list[list[torch.Tensor]]:
    """Consecutive groups of tensors of one dtype and device, each at most `bucket_mb` MB (or one tensor)."""
    limit = max(1, int(bucket_mb * 2**20))
    out: list[list[torch.Tensor]] = []
    size = 0
    for t in tensors:
        nbytes = t.numel() * t.element_size()
        last = out[-1] if out else None
        if last is None or size + nbytes > limit or (t.dtype, t.device) != (last[0].dtype, last[0].device):
            out.append([t])
            size = nbytes
        else:
            last.append(t)
            size += nbytes
    return out


def allreduce_grads(
    params: list[nn.Parameter], world_size: int, group: dist.ProcessGroup | None = None, bucket_mb: float = BUCKET_MB
) -> None:
    """Replace each `p.grad` by its mean over the ranks: one all-reduce per flattened bucket of
    `bucket_mb` MB (not one call per tensor), as DDP does.

    The parameter lists must match across ranks; a cheap check (count and total size) turns a
    mismatch into an error instead of silently mixing gradients of different parameters.
    """
    device = params[0].grad.device if params else torch.device("cpu")
    if dist.get_backend(group) == "nccl" and device.type != "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    check = torch.tensor([float(len(params)), float(sum(p.numel() for p in params))], device=device)
    spread = torch.stack([check, -check])
    dist.all_reduce(spread, op=dist.ReduceOp.MAX, group=group)
    if not torch.equal(spread[0], -spread[1]):
        raise SupernetError("ranks computed gradients for different parameters (did they sample different paths?)")
    for bucket in buckets([p.grad for p in params], bucket_mb):
        flat = _flatten_dense_tensors(bucket)
        dist.all_reduce(flat, group=group)
        flat /= world_size
        for grad, averaged in zip(bucket, _unflatten_dense_tensors(flat, bucket)):
            grad.copy_(averaged)


def init_distributed(device: torch.device | str = "cpu", bucket_mb: float = BUCKET_MB) -> Distributed | None:
    """Join the torchrun process group when launched with WORLD_SIZE > 1 (NCCL on CUDA, gloo on CPU);
    None for a single process."""
    device = torch.device(device)
    if not join_process_group(device):
        return None
    return Distributed(device=device, bucket_mb=bucket_mb)
