"""Mixed-precision quantized residual blocks (SPOS Fig. 3c, Table 6), with fake quantization.

Weights: DoReFa's uniform quantizer (Zhou et al. 2016) with a straight-through estimator:
k >= 2 bits maps tanh(w) / (2 max|tanh(w)|) + 1/2 onto 2^k - 1 uniform steps of [0, 1] and back to
[-1, 1]; 1 bit is sign(w) * mean|w|. Activations: PACT (Choi et al. 2018): clip to [0, alpha] with
a learnable alpha, then k-bit uniform steps; the rounding passes the gradient straight through and
alpha gets the gradient of the clipping (1 where the input exceeds alpha).

`QuantResBlock` is a ResNet basic block whose two 3x3 convs (and its 1x1 projection shortcut, when
there is one) share one (weight bits, activation bits) choice: the block input is quantized once
(it feeds conv1 and the shortcut), the BN output of conv1 goes through PACT in place of the ReLU.
The residual sum and its ReLU stay in full precision. In a supernet one block per layer serves every
choice: weights at the largest bottleneck width (`mid`, sliced as in `supernet.ops.slicing`), and one
alpha per quantization point and bit-width choice (`alpha_in.w2a4`, `alpha_mid.w2a4`). A stand-alone
block is the same class with one choice and its width. Registers block `qres` and op names `wXaY@S`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from supernet.ops.blocks import BlockConfig, register_block
from supernet.ops.candidates import (
    register_op,
    scaled_width,
    shared_choice,
    split_scale,
)
from supernet.ops.slicing import sliced_batch_norm
from supernet.space.space import LayerSpec

PACT_ALPHA_INIT = 10.0  # PACT paper's initial clipping value


def _straight_through(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """`q` forward (exactly: x - x.detach() is 0), identity gradient to `x` backward."""
    return q.detach() + (x - x.detach())


def quantize_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """DoReFa weight quantization to `bits` (1: sign times mean magnitude), straight-through."""
    if bits < 1:
        raise ValueError(f"weight bits must be >= 1, got {bits}")
    if bits == 1:
        return _straight_through(w, torch.sign(w) * w.abs().mean())
    t = torch.tanh(w)
    unit = t / (2 * t.abs().max().clamp_min(1e-12)) + 0.5
    levels = 2**bits - 1
    return 2 * _straight_through(unit, torch.round(unit * levels) / levels) - 1


def pact(x: torch.Tensor, alpha: torch.Tensor, bits: int) -> torch.Tensor:
    """PACT activation: clip to [0, alpha], quantize to `bits` uniform steps (straight-through)."""
    if bits < 1:
        raise ValueError(f"activation bits must be >= 1, got {bits}")
    y = torch.minimum(F.relu(x), alpha)
    scale = (2**bits - 1) / alpha.detach().clamp_min(1e-8)
    return _straight_through(y, torch.round(y * scale) / scale)


def bits_key(wbits: int, abits: int) -> str:
    return f"w{wbits}a{abits}"


class QuantResBlock(nn.Module):
    """ResNet basic block with fake-quantized convs; `bit_choices` lists the (w, a) pairs it can run."""

    def __init__(
        self,
        cin: int,
        cout: int,
        mid: int,
        stride: int,
        bit_choices: Sequence[Sequence[int]],
        bn_affine: bool = True,
        alpha_init: float = PACT_ALPHA_INIT,
    ) -> None:
        super().__init__()
        if not bit_choices:
            raise ValueError("a quantized block needs at least one (weight bits, activation bits) choice")
        self.bit_choices = tuple((int(w), int(a)) for w, a in bit_choices)
        self.mid, self.stride = mid, stride
        self.conv1 = nn.Conv2d(cin, mid, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid, affine=bn_affine)
        self.conv2 = nn.Conv2d(mid, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, affine=bn_affine)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, affine=bn_affine))
            if stride != 1 or cin != cout
            else None
        )
        keys = [bits_key(w, a) for w, a in self.bit_choices]
        self.alpha_in = nn.ParameterDict({k: nn.Parameter(torch.tensor(float(alpha_init))) for k in keys})
        self.alpha_mid = nn.ParameterDict({k: nn.Parameter(torch.tensor(float(alpha_init))) for k in keys})

    def zero_init_residual(self) -> None:
        if self.bn2.affine:
            nn.init.zeros_(self.bn2.weight)

    def forward(
        self, x: torch.Tensor, mid: int | None = None, wbits: int | None = None, abits: int | None = None
    ) -> torch.Tensor:
        """Run with bottleneck width `mid` (the leading slice) and bits (default: the only choice)."""
        if wbits is None or abits is None:
            if len(self.bit_choices) != 1:
                raise ValueError("a block with several bit-width choices needs wbits and abits")
            wbits, abits = self.bit_choices[0]
        mid = self.mid if mid is None else mid
        if not 1 <= mid <= self.mid:
            raise ValueError(f"bottleneck width {mid} outside 1..{self.mid}")
        key = bits_key(wbits, abits)
        xq = pact(x, self.alpha_in[key], abits)
        h = F.conv2d(xq, quantize_weight(self.conv1.weight[:mid], wbits), None, self.stride, 1)
        hq = pact(sliced_batch_norm(self.bn1, h), self.alpha_mid[key], abits)
        y = self.bn2(F.conv2d(hq, quantize_weight(self.conv2.weight[:, :mid], wbits), None, 1, 1))
        if self.shortcut is None:
            return F.relu(y + x)
        conv, bn = self.shortcut
        return F.relu(y + bn(F.conv2d(xq, quantize_weight(conv.weight, wbits), None, self.stride)))

    def quantized_layers(self) -> list[str]:
        """Names of the convs that run quantized (for the exported model's list of bit widths)."""
        return ["conv1", "conv2"] + (["shortcut.0"] if self.shortcut is not None else [])


def block_bits(config: BlockConfig) -> tuple[int, int] | None:
    """(weight bits, activation bits) of a quantized block config, None for a full-precision one."""
    if "wbits" in config and "abits" in config:
        return int(config["wbits"]), int(config["abits"])
    return None


FULL_PRECISION_TYPES = ("conv", "linear", "els")


def bit_widths(blocks: Sequence[BlockConfig]) -> list[dict]:
    """Per block with weights, its bit widths: quantized blocks their (w, a), full-precision convs
    and linears 32/32 marked `full_precision` (the stand-alone model's `bit_widths` list)."""
    rows = []
    for i, config in enumerate(blocks):
        bits = block_bits(config)
        if bits is not None:
            rows.append({"block": i, "type": config["type"], "weight_bits": bits[0], "act_bits": bits[1]})
        elif config.get("type") in FULL_PRECISION_TYPES:
            rows.append({"block": i, "type": config["type"], "weight_bits": 32, "act_bits": 32, "full_precision": True})
    return rows


def _build(c: BlockConfig, affine: bool) -> nn.Module:
    choices = c.get("bit_choices") or [[c["wbits"], c["abits"]]]
    return QuantResBlock(
        c["in"], c["out"], c["mid"], c.get("stride", 1), choices, affine, c.get("alpha_init", PACT_ALPHA_INIT)
    )


_OP = re.compile(r"^w(?P<w>\d+)a(?P<a>\d+)@(?P<s>[0-9.]+)$")


def _resolve(m: re.Match[str], layer: LayerSpec, identity: str) -> BlockConfig:
    """`w2a4@1.5`: 2-bit weights, 4-bit activations, bottleneck width 1.5x the block's output width."""
    wbits, abits, scale = int(m["w"]), int(m["a"]), split_scale(m[0])[1]
    if not (1 <= wbits <= 32 and 1 <= abits <= 32):
        raise ValueError(f"op {m[0]!r}: bit widths must be 1..32")
    base = {"type": "qres", "in": layer.in_channels, "out": layer.out_channels, "stride": layer.stride}
    config = {**base, "mid": scaled_width(layer.out_channels, scale), "wbits": wbits, "abits": abits}
    parsed = [_OP.match(op) for op in layer.choices]
    parsed = [p for p in parsed if p is not None] or [m]
    bit_choices = sorted({(int(p["w"]), int(p["a"])) for p in parsed} | {(wbits, abits)})
    widest = max([scaled_width(layer.out_channels, split_scale(p[0])[1]) for p in parsed] + [config["mid"]])
    supernet = {**base, "mid": widest, "bit_choices": [list(b) for b in bit_choices]}
    return shared_choice(config, "qres", supernet, {"mid": config["mid"], "wbits": wbits, "abits": abits})


register_block("qres", _build)
register_op(_OP.pattern, _resolve)
# ResNet's stem pooling: 3x3 max-pool, stride 2, padding 1 (112 -> 56).
register_block(
    "stem_maxpool", lambda c, a: nn.MaxPool2d(c.get("kernel", 3), c.get("stride", 2), c.get("kernel", 3) // 2)
)
