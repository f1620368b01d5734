"""Static building blocks, shared by supernets and stand-alone models.

A block is described by a plain dict (`{"type": "ibn", "in": 16, ...}`) and built by
`build_block`. A supernet candidate and the stand-alone layer exported from it are the
same class, so exporting a path is a state-dict copy.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

from supernet.core.registry import Registry
from supernet.space.space import BlockConfig

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "hswish": lambda: nn.Hardswish(inplace=True),
}


def activation(name: str | None) -> nn.Module:
    if name is None:
        return nn.Identity()
    return _ACTIVATIONS[name]()


class ConvBNAct(nn.Sequential):
    """Conv (no bias) + BatchNorm + optional activation."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 1,
        stride: int = 1,
        groups: int = 1,
        act: str | None = "relu6",
        bn_affine: bool = True,
    ) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout, affine=bn_affine),
            activation(act),
        )


class SqueezeExcite(nn.Module):
    """SE as in the released SCARLET/MnasNet models: biased 1x1 convs, ReLU, hard-sigmoid."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.reduce = nn.Conv2d(channels, hidden, 1, bias=True)
        self.expand = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = torch.relu(self.reduce(s))
        return x * nn.functional.hardsigmoid(self.expand(s))


class InvertedBottleneck(nn.Module):
    """MobileNetV2 block: 1x1 expand, kxk depthwise, optional SE, 1x1 linear projection."""

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int,
        expansion: int,
        kernel: int,
        act: str = "relu6",
        se: bool = False,
        bn_affine: bool = True,
    ) -> None:
        super().__init__()
        mid = cin * expansion
        self.expand = ConvBNAct(cin, mid, 1, act=act, bn_affine=bn_affine) if expansion != 1 else nn.Identity()
        self.depthwise = ConvBNAct(mid, mid, kernel, stride, groups=mid, act=act, bn_affine=bn_affine)
        self.se = SqueezeExcite(mid) if se else nn.Identity()
        self.project = ConvBNAct(mid, cout, 1, act=None, bn_affine=bn_affine)
        self.residual = stride == 1 and cin == cout

    def zero_init_residual(self) -> None:
        """Start a residual block as the identity: zero the last BN scale (Goyal et al., 2017)."""
        bn = self.project[1]
        if self.residual and bn.affine:
            nn.init.zeros_(bn.weight)

    def pre_activation(self) -> ConvBNAct:
        """The first conv-BN-act of the block: its BN output is where `hidden_bias` is added."""
        return self.expand if isinstance(self.expand, ConvBNAct) else self.depthwise

    def forward(self, x: torch.Tensor, hidden_bias: torch.Tensor | None = None) -> torch.Tensor:
        """`hidden_bias`: a per-channel vector added after the first BatchNorm, before its activation."""
        if hidden_bias is None:
            h = self.depthwise(self.expand(x))
        elif isinstance(self.expand, ConvBNAct):
            h = self.depthwise(_bn_bias_act(self.expand, x, hidden_bias))
        else:
            h = _bn_bias_act(self.depthwise, x, hidden_bias)
        y = self.project(self.se(h))
        return x + y if self.residual else y


def _bn_bias_act(layer: ConvBNAct, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    conv, bn, act = layer
    return act(bn(conv(x)) + bias.view(1, -1, 1, 1))


class ChannelBias(nn.Module):
    """Adds a constant per-channel vector: the stand-alone form of an inter-choice input bias."""

    no_weight_decay = True  # as the supernet's bias vectors under `train.no_decay_bn`

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias.view(1, -1, *([1] * (x.dim() - 2)))


class Subsample(nn.Module):
    """Every `stride`-th pixel (what a strided 1x1 conv does spatially): the downsampling of a strided
    identity in the LET paper's stand-alone model (`supernet.ops.standalone.let_standalone_config`)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = int(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride]


class GlobalPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3))


def _conv(c: BlockConfig, affine: bool) -> nn.Module:
    return ConvBNAct(
        c["in"], c["out"], c.get("kernel", 1), c.get("stride", 1), c.get("groups", 1), c.get("act"), affine
    )


def _ibn(c: BlockConfig, affine: bool) -> nn.Module:
    return InvertedBottleneck(
        c["in"],
        c["out"],
        c.get("stride", 1),
        c["expansion"],
        c["kernel"],
        c.get("act", "relu6"),
        c.get("se", False),
        affine,
    )


def _els(c: BlockConfig, affine: bool) -> nn.Module:
    """SCARLET's equivariant learnable stabilizer: a bare 1x1 conv (no BN, bias or activation).

    Initialised as the identity (Dirac; for unequal widths, the identity on the shared channels),
    so a fresh ELS path computes what the skip it replaces computes and learns from there.
    """
    conv = nn.Conv2d(c["in"], c["out"], 1, c.get("stride", 1), bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        n = min(c["in"], c["out"])
        conv.weight[range(n), range(n), 0, 0] = 1.0
    return conv


BlockBuilder = Callable[[BlockConfig, bool], nn.Module]
"""`builder(config, bn_affine) -> module`."""
BLOCKS: Registry[BlockBuilder] = Registry("block type", ValueError)
"""Filled here and by the other `supernet.ops` modules, which `supernet.ops` imports: a stand-alone model
rebuilds from its JSON config alone in a fresh process. Unknown types are refused (SECURITY.md)."""
BLOCKS.register("conv", _conv)
BLOCKS.register("ibn", _ibn)
BLOCKS.register("els", _els)
BLOCKS.register("identity", lambda c, a: nn.Identity())
BLOCKS.register("bias", lambda c, a: ChannelBias(c["channels"]))
BLOCKS.register("pool", lambda c, a: GlobalPool())
BLOCKS.register("subsample", lambda c, a: Subsample(c["stride"]))
BLOCKS.register("dropout", lambda c, a: nn.Dropout(c.get("p", 0.0)))
BLOCKS.register("linear", lambda c, a: nn.Linear(c["in"], c["out"], bias=c.get("bias", True)))


def build_block(config: BlockConfig, bn_affine: bool = True) -> nn.Module:
    """Build one block from its config dict."""
    return BLOCKS.get(config.get("type"))(config, bn_affine)


def register_block(kind: str, builder: BlockBuilder) -> None:
    """Add a block type (used by search spaces that bring their own blocks)."""
    BLOCKS.register(kind, builder)


def split_copies(
    candidates: nn.ModuleDict, names: Sequence[str], origin: dict[nn.Parameter, nn.Parameter]
) -> nn.ModuleDict:
    """Each candidate copied once per name (inter-choice `split`): `{op: {name: copy}}`.

    `origin` receives, for every copied parameter, the parameter it was copied from.
    """
    split = nn.ModuleDict()
    for op, module in candidates.items():
        copies = nn.ModuleDict()
        for name in names:
            twin = copy.deepcopy(module)
            origin.update(zip(twin.parameters(), module.parameters()))
            copies[name] = twin
        split[op] = copies
    return split
