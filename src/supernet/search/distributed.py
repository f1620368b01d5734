"""Split the candidates of a generation across `torchrun` ranks and gather the results."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist

from supernet.core.distributed_env import join_process_group
from supernet.search.objectives import Metrics
from supernet.space.arch import Arch


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def split_evaluate(
    evaluate: Callable[[Arch], Metrics], evaluate_many: Callable[[list[Arch]], list[Metrics]] | None = None
) -> Callable[[list[Arch]], list[Metrics]]:
    """Rank r evaluates candidates r, r+W, r+2W, ...; every rank returns all results, in order.
    With `evaluate_many`, a rank scores its share together (e.g. on their prefix tree).

    All ranks run the same strategy with the same seed, so they ask for the same candidates.
    """

    def share(archs: list[Arch]) -> list[Metrics]:
        return list(evaluate_many(archs)) if evaluate_many is not None else [evaluate(a) for a in archs]

    def many(archs: list[Arch]) -> list[Metrics]:
        rank, world = dist.get_rank(), dist.get_world_size()
        indices = [i for i in range(len(archs)) if i % world == rank]
        mine = {i: dict(m) for i, m in zip(indices, share([archs[i] for i in indices]), strict=True)}
        gathered: list[dict[int, dict[str, float]] | None] = [None] * world
        dist.all_gather_object(gathered, mine)
        merged = {i: m for part in gathered for i, m in (part or {}).items()}
        return [merged[i] for i in range(len(archs))]

    return many


def init_from_env(device: torch.device | str = "cpu") -> bool:
    """Join the process group `torchrun` describes (WORLD_SIZE > 1); returns whether distributed.

    NCCL on a CUDA device (made the current device first: `all_gather_object` stages its pickled
    objects on the current device), gloo on CPUs.
    """
    if is_distributed():
        return True
    return join_process_group(torch.device(device))


def is_main_rank() -> bool:
    return not is_distributed() or dist.get_rank() == 0
