"""Channel slicing (SPOS Fig. 3b): weights allocated at the largest width, a narrower choice runs on
the leading slice `weight[:c_out, :c_in]` and the matching BatchNorm slice.

A sliced block keeps ordinary `nn.Conv2d`/`nn.BatchNorm2d` modules at the largest width, so that the
stand-alone block of a narrower choice is the same class built at that width, and exporting is a
copy of the leading slice of every tensor (`copy_leading_slices`). BatchNorm running statistics are
sliced as well: a narrow step updates (and a recalibration re-estimates) only the channels it uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import torch
import torch.nn.functional as F
from torch import nn


def sliced_conv(conv: nn.Conv2d, x: torch.Tensor, out_channels: int | None = None) -> torch.Tensor:
    """`conv` on the first `x.shape[1]` input channels and `out_channels` output channels (default all).

    A depthwise conv (groups == in_channels) runs one filter per input channel."""
    cin = x.shape[1]
    if conv.groups > 1:
        if conv.groups != conv.in_channels or conv.out_channels != conv.in_channels:
            raise ValueError("only depthwise grouped convs can be sliced")
        weight, bias, groups = conv.weight[:cin], None if conv.bias is None else conv.bias[:cin], cin
    else:
        cout = conv.out_channels if out_channels is None else out_channels
        weight, bias, groups = conv.weight[:cout, :cin], None if conv.bias is None else conv.bias[:cout], 1
    if weight.shape[0] == conv.out_channels and cin == conv.in_channels:
        return conv(x)
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, groups)


def sliced_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """`bn` on the first `x.shape[1]` channels; running statistics of the others stay untouched.

    Mirrors `_BatchNorm.forward` (momentum, cumulative average when momentum is None, eval mode)."""
    c = x.shape[1]
    if c == bn.num_features:
        return bn(x)
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    use_batch = bn.training or bn.running_mean is None
    stats = not bn.training or bn.track_running_stats
    return F.batch_norm(
        x,
        bn.running_mean[:c] if stats and bn.running_mean is not None else None,
        bn.running_var[:c] if stats and bn.running_var is not None else None,
        None if bn.weight is None else bn.weight[:c],
        None if bn.bias is None else bn.bias[:c],
        use_batch,
        factor,
        bn.eps,
    )


def sliced_conv_bn_act(layer: nn.Sequential, x: torch.Tensor, out_channels: int | None = None) -> torch.Tensor:
    """A `ConvBNAct` (conv, BN, activation) run on its leading slice."""
    conv, bn, act = layer
    return act(sliced_batch_norm(bn, sliced_conv(conv, x, out_channels)))


def leading_slice(tensor: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """`tensor[:shape[0], :shape[1], ...]`; scalars (e.g. `num_batches_tracked`) as they are."""
    if tensor.dim() != len(shape) or any(s > t for s, t in zip(shape, tensor.shape)):
        raise ValueError(f"cannot slice a tensor of shape {tuple(tensor.shape)} to {tuple(shape)}")
    return tensor[tuple(slice(0, s) for s in shape)]


def copy_leading_slices(source: Mapping[str, torch.Tensor], target: nn.Module) -> None:
    """Load into `target` the leading slice of each of its tensors from the state `source`.

    Every tensor of `target` must be in `source` except BatchNorm affine parameters (a supernet
    trained with affine-free BN: they keep weight 1, bias 0); extra source entries are ignored
    (e.g. the clipping parameters of other quantization choices)."""
    state = target.state_dict()
    missing = [k for k in state if k not in source and not _is_bn_affine(target, k)]
    if missing:
        raise RuntimeError(f"cannot copy weights into {type(target).__name__}: missing {missing}")
    target.load_state_dict({k: leading_slice(source[k], v.shape) if k in source else v for k, v in state.items()})


def _is_bn_affine(module: nn.Module, key: str) -> bool:
    owner, _, leaf = key.rpartition(".")
    sub = module.get_submodule(owner) if owner else module
    return isinstance(sub, nn.modules.batchnorm._BatchNorm) and leaf in ("weight", "bias")


def slice_masks(module: nn.Module, shapes: Mapping[str, torch.Size]) -> dict[nn.Parameter, torch.Tensor]:
    """{parameter of `module`: bool mask of its leading slice} for the parameters that `shapes`
    (parameter name -> the shape a narrower choice uses) makes narrower than they are."""
    masks = {}
    for name, p in module.named_parameters():
        shape = shapes.get(name)
        if shape is not None and tuple(shape) != tuple(p.shape):
            mask = torch.zeros(p.shape, dtype=torch.bool, device=p.device)
            mask[tuple(slice(0, s) for s in shape)] = True
            masks[p] = mask
    return masks


def parameter_shapes(block: nn.Module) -> dict[str, torch.Size]:
    return {name: p.shape for name, p in block.named_parameters()}


class OutsideSlicesKept:
    """Context around `optimizer.step()`: the parts of parameters outside their step's slices, and
    their optimizer state, come out bit-identical.

    A sliced parameter gets a gradient on its whole tensor (zeros outside the slice), so SGD's weight
    decay and momentum would move the unused part. This saves that part before the step and writes
    it back afterwards; optimizer state created by this step is zeroed there (for SGD without
    dampening a zero momentum buffer behaves exactly like a fresh one). `masks`: parameter -> bool
    mask of the part the step's paths used."""

    def __init__(self, optimizer: torch.optim.Optimizer, masks: Mapping[nn.Parameter, torch.Tensor]) -> None:
        self.optimizer = optimizer
        self.masks = {p: m for p, m in masks.items() if p.grad is not None}
        self.saved: list[tuple[nn.Parameter, torch.Tensor, torch.Tensor, dict[str, torch.Tensor | None]]] = []

    def __enter__(self) -> Self:
        for p, used in self.masks.items():
            outside = ~used
            state = self.optimizer.state.get(p, {})
            kept = {k: v[outside].clone() for k, v in state.items() if torch.is_tensor(v) and v.shape == p.shape}
            self.saved.append((p, outside, p.detach()[outside].clone(), kept))
        return self

    def __exit__(self, *exc: object) -> None:
        with torch.no_grad():
            for p, outside, values, kept in self.saved:
                p[outside] = values
                for k, v in self.optimizer.state.get(p, {}).items():
                    if torch.is_tensor(v) and v.shape == p.shape:
                        v[outside] = kept.get(k, 0)
        self.saved.clear()
