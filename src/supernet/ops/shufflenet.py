"""ShuffleNetV2 choice blocks of SPOS (Guo et al., ECCV 2020, Table 2): `choice_3/5/7` and `choice_x`.

As in the official SPOS code: a stride-1 unit splits its input by channel parity (the channel
shuffle), passes the even half through and transforms the odd half; a stride-2 unit runs a
projection branch (depthwise + 1x1) and the main branch on the full input. Both concatenate
[passed-through or projected, main]. Registers block type `shuffle` and the op names.

Channel search (SPOS "Search Space: Channels", Fig. 3b): `choice_3@0.4` is `choice_3` with its
middle width ("mid channels", the output of the main branch's first 1x1 conv) at 0.4x the default
(output / 2). In a supernet every `choice_k@s` of a layer shares one block built at the layer's
largest scale and runs the leading slice (`supernet.ops.slicing`).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from supernet.ops.blocks import BlockConfig, ConvBNAct, register_block
from supernet.ops.candidates import register_op, scaled_width, shared_choice, split_scale
from supernet.ops.slicing import sliced_conv_bn_act
from supernet.space.space import LayerSpec


class ShuffleChoice(nn.Module):
    """`kernel` k: main branch 1x1 -> kxk dw -> 1x1; `xception`: three (3x3 dw -> 1x1) pairs."""

    def __init__(
        self,
        cin: int,
        cout: int,
        mid: int,
        stride: int,
        kernel: int = 3,
        xception: bool = False,
        bn_affine: bool = True,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"shuffle block stride must be 1 or 2, got {stride}")
        if stride == 1 and (cin != cout or cin % 2):
            raise ValueError(f"stride-1 shuffle block needs even cin == cout, got {cin} -> {cout}")
        branch_in = cin // 2 if stride == 1 else cin
        main_out = cout - branch_in
        if main_out < 1 or mid < 1:
            raise ValueError(f"shuffle block {cin} -> {cout} (mid {mid}) leaves no main-branch channels")
        self.stride = stride
        self.mid = mid

        def conv(i: int, o: int, k: int = 1, s: int = 1, relu: bool = False) -> nn.Module:
            return ConvBNAct(i, o, k, s, groups=i if k > 1 else 1, act="relu" if relu else None, bn_affine=bn_affine)

        if xception:
            kernel = 3
            self.main = nn.Sequential(
                conv(branch_in, branch_in, 3, stride),
                conv(branch_in, mid, relu=True),
                conv(mid, mid, 3),
                conv(mid, mid, relu=True),
                conv(mid, mid, 3),
                conv(mid, main_out, relu=True),
            )
        else:
            self.main = nn.Sequential(
                conv(branch_in, mid, relu=True),
                conv(mid, mid, kernel, stride),
                conv(mid, main_out, relu=True),
            )
        self.proj = nn.Sequential(conv(cin, cin, kernel, stride), conv(cin, cin, relu=True)) if stride == 2 else None

    def forward(self, x: torch.Tensor, mid: int | None = None) -> torch.Tensor:
        """`mid`: run the main branch with this middle width (the leading slice); default all."""
        main = self.main if mid is None or mid == self.mid else (lambda h: self._sliced_main(h, mid))
        if self.proj is not None:
            return torch.cat((self.proj(x), main(x)), 1)
        b, c, h, w = x.shape
        pairs = x.reshape(b, c // 2, 2, h, w)
        return torch.cat((pairs[:, :, 0], main(pairs[:, :, 1])), 1)

    def _sliced_main(self, h: torch.Tensor, mid: int) -> torch.Tensor:
        if not 1 <= mid <= self.mid:
            raise ValueError(f"middle width {mid} outside 1..{self.mid}")
        last = len(self.main) - 1
        for i, layer in enumerate(self.main):  # pointwise convs but the last go to `mid`
            h = sliced_conv_bn_act(layer, h, None if i == last or layer[0].groups > 1 else mid)
        return h


def _build(c: BlockConfig, affine: bool) -> nn.Module:
    return ShuffleChoice(
        c["in"], c["out"], c["mid"], c.get("stride", 1), c.get("kernel", 3), c.get("xception", False), affine
    )


def _config(k: str, layer: LayerSpec, mid: int) -> dict:
    config = {"type": "shuffle", "in": layer.in_channels, "out": layer.out_channels, "mid": mid, "stride": layer.stride}
    return {**config, "xception": True} if k == "x" else {**config, "kernel": int(k)}


def _resolve(m: re.Match[str], layer: LayerSpec, identity: str) -> BlockConfig:
    base = layer.out_channels // 2
    if m["s"] is None:
        return _config(m["k"], layer, base)
    scale = split_scale(m[0])[1]
    config = _config(m["k"], layer, scaled_width(base, scale))
    widest = _config(m["k"], layer, max(scaled_width(base, s) for s in _layer_scales(layer, m["k"])))
    return shared_choice(config, f"choice_{m['k']}", widest, {"mid": config["mid"]})


def _layer_scales(layer: LayerSpec, k: str) -> list[float]:
    return [split_scale(op)[1] for op in layer.choices if op.startswith(f"choice_{k}@")]


register_block("shuffle", _build)
register_op(r"^choice_(?P<k>[357x])(?P<s>@[0-9.]+)?$", _resolve)
