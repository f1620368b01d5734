"""Count multiply-accumulates and parameters of a module by running it once.

MACs follow the convention of the papers' FLOPs columns: only convolutions and linear
layers (bias additions excluded); BatchNorm, activations, pooling, SE means, products and
residual adds cost nothing. The count comes from `torch.utils.flop_counter.FlopCounterMode`
(which reports 2 FLOPs per multiply-accumulate), filtered to the conv and matmul ops.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from supernet.core.errors import SpaceError

MAX_INPUT_VALUES = 3 * 4096 * 4096  # a 4096 x 4096 RGB image; larger inputs are refused before allocating

# aten ops that a convolution or a linear layer dispatches to (attention ops are not counted).
MAC_OPS = frozenset(
    {
        "aten.convolution",
        "aten._convolution",
        "aten.cudnn_convolution",
        "aten.convolution_overrideable",
        "aten._slow_conv2d_forward",
        "aten.mm",
        "aten.addmm",
        "aten.bmm",
        "aten.baddbmm",
    }
)


def _run(module: nn.Module, input_shape: tuple[int, ...], counter: FlopCounterMode | None) -> torch.Tensor:
    """Run `module` once in eval mode on a zero batch of one, restoring its training flag."""
    values = 1
    for size in input_shape:
        values *= int(size)
    if values > MAX_INPUT_VALUES:
        raise SpaceError(
            f"an input of shape {tuple(input_shape)} is too large to count costs on (more than "
            f"{MAX_INPUT_VALUES} values, e.g. a resolution above 4096); use a smaller --resolution"
        )
    was_training, threads = module.training, torch.get_num_threads()
    module.eval()
    # One thread: batch-1 passes over small maps gain nothing from more, and on a loaded
    # machine the intra-op thread pool's spinning makes them many times slower.
    torch.set_num_threads(1)
    try:
        x = torch.zeros(1, *input_shape)
        with torch.no_grad():
            if counter is None:
                return module(x)
            with counter:
                return module(x)
    finally:
        torch.set_num_threads(threads)
        module.train(was_training)


def _count_macs(module: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, torch.Tensor]:
    counter = FlopCounterMode(display=False)
    out = _run(module, tuple(input_shape), counter)
    flops = sum(n for op, n in counter.get_flop_counts().get("Global", {}).items() if str(op) in MAC_OPS)
    if flops % 2:
        raise AssertionError(f"odd FLOP count {flops}: not a multiply-accumulate count")
    return int(flops) // 2, out


def count_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of conv and linear layers for one sample of `input_shape` (no batch dim)."""
    return _count_macs(module, input_shape)[0]


def count_params(module: nn.Module) -> int:
    """Trainable parameters (BatchNorm weight and bias included; running statistics are buffers)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def output_shape(module: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Output shape (no batch dim) of `module` for one sample of `input_shape`."""
    return tuple(_run(module, tuple(input_shape), None).shape[1:])


def count_all(module: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int, tuple[int, ...]]:
    """(MACs, parameters, output shape) with a single forward pass."""
    macs, out = _count_macs(module, input_shape)
    return macs, count_params(module), tuple(out.shape[1:])
