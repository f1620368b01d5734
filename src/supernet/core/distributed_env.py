"""The one place that reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), joins its process group and
leaves it.

torchrun sets these variables in every process it starts; a plain `python -m supernet.cli ...` has
none of them and is rank 0 of a world of one. The backend follows the device: NCCL when the process
trains on a CUDA device (after `torch.cuda.set_device(LOCAL_RANK)`, which NCCL collectives, and
`all_gather_object` in particular, use to place their buffers), gloo on CPUs.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def env_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def env_local_rank() -> int:
    """This process's index on its machine (torchrun's LOCAL_RANK): the CUDA device it uses."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """Rank 0 of a torchrun launch, or a plain process."""
    return env_rank() == 0


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def join_process_group(device: torch.device) -> bool:
    """Join torchrun's process group when WORLD_SIZE > 1 (once per process); returns whether distributed.

    On CUDA the process's current device is set first, so that NCCL and object collectives use it.
    """
    if env_world_size() <= 1 or not dist.is_available():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend_for(device))
    return True


def leave_process_group() -> None:
    """Destroy this process's process group, if it has one: each command's last step on every rank.

    A rank that exits with its group still alive tears the group's threads down at interpreter exit; while
    another rank is still working, that rank then dies of SIGABRT ("terminate called without an active
    exception") instead of its exit code, and torchrun reports a failed run (9 of 40 two-rank gloo runs whose
    rank 0 finished a second later did so; none with this call). No barrier: a rank that failed must not
    keep the others waiting.
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
