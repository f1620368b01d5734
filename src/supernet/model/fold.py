"""SCARLET-NAS Lemma 1: an ELS (a bare 1x1 conv) folds into the convolution that follows it.

For a stride-1 1x1 conv W1 (P x U) followed by a groups=1 conv W2 (C x P x k x k), the composition
is the single conv W3[c, u, :, :] = sum_p W2[c, p, :, :] W1[p, u] (SCARLET appendix A). It is exact
at the borders too: a bias-free 1x1 map commutes with zero (and with any pixel-copying) padding.

Where it is *not* exact:
- the next block has a residual around it: x -> ELS(x) + f(ELS(x)) keeps ELS on the skip branch;
  folding changes only f, so it holds only when the ELS is the identity;
- the next block's first conv is depthwise (groups > 1, e.g. an inverted bottleneck with expansion
  1): W3 is a dense conv, no longer a depthwise one (`fold_els_into_conv` refuses);
- the ELS has a stride, a bias, or something (BN, activation) between it and the conv.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from supernet.ops.blocks import InvertedBottleneck


def fold_els_into_conv(els: nn.Conv2d, conv: nn.Conv2d) -> nn.Conv2d:
    """The conv equal to `conv(els(x))`; `els` is a stride-1 1x1 conv without bias, `conv` has groups=1."""
    if els.kernel_size != (1, 1) or els.stride != (1, 1) or els.groups != 1 or els.bias is not None:
        raise ValueError("the ELS must be a bias-free, stride-1, groups=1 1x1 conv")
    if conv.groups != 1:
        raise ValueError(f"cannot fold into a grouped/depthwise conv (groups={conv.groups}); W3 would be dense")
    if conv.in_channels != els.out_channels:
        raise ValueError(f"ELS gives {els.out_channels} channels, the conv takes {conv.in_channels}")
    folded = nn.Conv2d(
        els.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        1,
        conv.bias is not None,
        conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    with torch.no_grad():
        w1 = els.weight[:, :, 0, 0]  # [p, u]
        folded.weight.copy_(torch.einsum("cpij,pu->cuij", conv.weight, w1))
        if conv.bias is not None:
            folded.bias.copy_(conv.bias)
    return folded


def fold_els_into_block(els: nn.Conv2d, block: InvertedBottleneck) -> InvertedBottleneck:
    """A copy of `block` whose 1x1 expand conv absorbs `els` (exact for a non-residual block)."""
    if block.residual:
        raise ValueError("the block has a residual around it: folding the ELS would drop it from the skip")
    if isinstance(block.expand, nn.Identity):
        raise ValueError("the block starts with a depthwise conv (expansion 1): the fold is not depthwise")
    folded = copy.deepcopy(block)
    folded.expand[0] = fold_els_into_conv(els, block.expand[0])
    return folded


def fold_standalone_els(model: nn.Sequential, config: Mapping[str, Any]) -> tuple[nn.Sequential, dict[str, Any]]:
    """Fold every shape-keeping ELS block of an exported model into the block right after it where Lemma 1
    is exact (a groups=1 conv first: a plain `conv`, another `els`, a non-residual `ibn` with an expand
    conv); the others stay as explicit 1x1 conv blocks. Returns the model and its config (folded ELS
    blocks become `identity`), which gets `els_folded` / `els_kept` (block indices)."""
    from supernet.model.standalone import StandaloneNet

    blocks = [dict(b) for b in config["blocks"]]
    kept = [i for i, b in enumerate(blocks) if b["type"] != "identity"]
    modules = dict(zip(kept, (copy.deepcopy(m) for m in model), strict=True))
    folded: list[int] = []
    for pos, i in enumerate(kept[:-1]):
        j = kept[pos + 1]
        if not _same_shape_els(blocks[i]) or i not in modules:
            continue
        target = _fold_into(modules[i], modules[j])
        if target is not None:
            modules[j] = target
            del modules[i]
            blocks[i] = {"type": "identity"}
            folded.append(i)
    out_config = {
        **config,
        "blocks": blocks,
        "els_folded": folded,
        "els_kept": [i for i, b in enumerate(blocks) if _same_shape_els(b)],
    }
    out = StandaloneNet(out_config)
    for target, source in zip(out, (modules[i] for i in sorted(modules)), strict=True):
        target.load_state_dict(source.state_dict())
    return out, out_config


def _same_shape_els(block: Mapping[str, Any]) -> bool:
    return block["type"] == "els" and block.get("stride", 1) == 1 and block["in"] == block["out"]


def _fold_into(els: nn.Module, block: nn.Module) -> nn.Module | None:
    """`block` with `els` folded into its first conv, or None where that is not exact."""
    from supernet.ops.blocks import ConvBNAct

    if not isinstance(els, nn.Conv2d):
        return None
    try:
        if isinstance(block, InvertedBottleneck):
            return fold_els_into_block(els, block)
        if isinstance(block, ConvBNAct) and type(block[0]) is nn.Conv2d:
            folded = copy.deepcopy(block)
            folded[0] = fold_els_into_conv(els, block[0])
            return folded
        if type(block) is nn.Conv2d:
            return fold_els_into_conv(els, block)
    except ValueError:  # residual, depthwise first, or shapes that do not chain: keep the ELS
        return None
    return None


def compose_els(els: nn.Module, pending: torch.Tensor | None) -> torch.Tensor:
    """The channel map `els` (a 1x1 conv, possibly strided: spatially a subsampling) after `pending`."""
    if not isinstance(els, nn.Conv2d) or els.kernel_size != (1, 1) or els.groups != 1 or els.bias is not None:
        raise ValueError(f"an ELS is a bias-free 1x1 conv, got {els}")
    w = els.weight.detach()[:, :, 0, 0]
    return w if pending is None else w @ pending


def fold_els_map(source: nn.Module, target: nn.Module, pending: torch.Tensor) -> None:
    """Load into `target` (the block after dropped shape-changing ELS in the LET model, its input channels
    adjusted) `source`'s weights with the dropped ELS maps `pending` folded into its first conv (Lemma 2,
    W3 = W2 W1), each tensor cut to the target's width (an inverted bottleneck's hidden width is its
    expansion times its input channels, so it narrows with them): a start for retraining, not the path's
    function."""
    from supernet.ops.slicing import copy_leading_slices

    name, conv = next(((n, m) for n, m in source.named_modules() if isinstance(m, nn.Conv2d)), (None, None))
    if conv is None or conv.groups != 1 or conv.in_channels != pending.shape[0]:
        raise ValueError(f"cannot fold the dropped ELS into {type(source).__name__}: its first conv is {conv}")
    key = f"{name}.weight" if name else "weight"
    state = {k: v.detach().clone() for k, v in source.state_dict().items()}
    state[key] = torch.einsum("cpij,pu->cuij", state[key], pending)
    copy_leading_slices(state, target)
