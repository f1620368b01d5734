"""SPOS mixed-precision quantization (Fig. 3c, Table 6): PACT, DoReFa weights, quantized ResNet spaces, BitOps."""

from __future__ import annotations

import random

import pytest
import torch

from supernet.core.errors import SpaceError
from supernet.cost import CostTable
from supernet.model.export import export_model, standalone_config
from supernet.model.standalone import StandaloneNet
from supernet.model.supernet import Supernet
from supernet.ops.quant import pact, quantize_weight
from supernet.space import create_space

TINY = {"preset": "fashion-mnist", "layers_per_stage": (1, 1, 1, 1)}


def _randomize(net: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "alpha" in name:
                p.uniform_(1.0, 4.0, generator=g)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.5, 0.5, generator=g)
    return net


def test_pact_clipping_parameter_receives_gradient():
    alpha = torch.nn.Parameter(torch.tensor(1.0))
    x = torch.tensor([-0.5, 0.3, 0.7, 1.5, 2.5], requires_grad=True)
    pact(x, alpha, 2).sum().backward()
    assert alpha.grad is not None and alpha.grad.item() == pytest.approx(float((x > 1).sum()))
    inside = (x > 0) & (x < 1)  # straight through the rounding inside the clipping range
    assert torch.all(x.grad[inside] == 1) and torch.all(x.grad[~inside] == 0)


def test_pact_output_has_2_to_the_bits_levels_in_0_alpha():
    alpha = torch.tensor(2.0)
    y = pact(torch.linspace(-1, 4, 1001), alpha, 2)
    assert sorted(set(y.tolist())) == pytest.approx([0, 2 / 3, 4 / 3, 2])


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_weight_quantizer_levels_and_straight_through(bits):
    w = torch.randn(64, 8, 3, 3, requires_grad=True)
    q = quantize_weight(w, bits)
    assert len(torch.unique(q.detach())) <= 2**bits
    if bits == 1:
        assert torch.allclose(q.detach().abs(), w.detach().abs().mean().expand_as(w))
    else:
        assert q.detach().abs().max() <= 1 + 1e-6
    q.sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_spaces_have_table6_choices_and_sizes():
    r18, r34 = create_space("resnet18-quant"), create_space("resnet34-quant")
    assert (r18.num_layers, r34.num_layers) == (8, 16)
    assert r18.size == 18**8 and r34.size == 18**16
    bits = {op.split("@")[0] for op in r18.layers[0].choices}
    assert bits == {"w1a2", "w2a2", "w1a4", "w2a4", "w3a4", "w4a4"}
    assert {op.split("@")[1] for op in r18.layers[0].choices} == {"0.5", "1.0", "1.5"}
    assert r18.stem[0]["kernel"] == 7 and r18.head[-1]["type"] == "linear"  # full precision, not searched
    with pytest.raises(SpaceError, match="bits must be"):
        create_space("resnet18-quant", bits=[[0, 2]])


@pytest.mark.parametrize("train_mode", [False, True])
def test_quantized_supernet_path_and_exported_model_give_identical_outputs(train_mode):
    space = create_space("resnet18-quant", **TINY)
    net = _randomize(Supernet(space)).train(train_mode)
    x = torch.randn(4, 1, 28, 28)
    rng = random.Random(0)
    for _ in range(3):
        arch = space.sample(rng)
        model = export_model(net, arch).train(train_mode)
        with torch.no_grad():
            assert torch.equal(net(x, arch), model(x)), arch


def test_one_alpha_per_choice_and_a_step_moves_only_the_sampled_ones():
    space = create_space("resnet18-quant", **TINY)
    net = Supernet(space)
    block = net.choices[0]["qres"]
    assert sorted(block.alpha_in) == sorted(f"w{w}a{a}" for w, a in ((1, 2), (2, 2), (1, 4), (2, 4), (3, 4), (4, 4)))
    arch = space.parse_arch(",".join(["w2a4@1.0"] * space.num_layers))
    torch.nn.functional.cross_entropy(net(torch.rand(4, 1, 28, 28) * 3, arch), torch.arange(4)).backward()
    assert block.alpha_in["w2a4"].grad is not None and block.alpha_mid["w2a4"].grad is not None
    assert all(block.alpha_in[k].grad is None for k in block.alpha_in if k != "w2a4")


def _basic_block_macs(cin: int, cout: int, mid: int, stride: int, size_in: int) -> int:
    out = size_in // stride
    macs = out * out * mid * cin * 9 + out * out * cout * mid * 9
    return macs + (out * out * cout * cin if stride != 1 or cin != cout else 0)


def test_bitops_of_a_hand_computed_resnet18_config():
    """ResNet-18 (ImageNet stem, 64x64 input to keep the test fast: stem to 16x16), one choice per
    block, BitOps by hand."""
    space = create_space("resnet18-quant", resolution=64)
    ops = ["w1a2@0.5", "w2a2@1.0", "w1a4@1.5", "w2a4@0.5", "w3a4@1.0", "w4a4@1.5", "w4a4@0.5", "w2a2@1.5"]
    blocks = [
        (64, 64, 1, 16),
        (64, 64, 1, 16),
        (64, 128, 2, 16),
        (128, 128, 1, 8),
        (128, 256, 2, 8),
        (256, 256, 1, 4),
        (256, 512, 2, 4),
        (512, 512, 1, 2),
    ]
    expected = 0
    for op, (cin, cout, stride, size) in zip(ops, blocks):
        w, a = int(op[1]), int(op[3])
        mid = int(cout * float(op.split("@")[1]) + 0.5)
        expected += _basic_block_macs(cin, cout, mid, stride, size) * w * a
    table = CostTable.build(space)
    assert table.query(space.parse_arch(",".join(ops)))["bitops"] == expected
    # the first conv and the last linear are full precision and count 0: kWkA totals scale with k^2
    two, four = table.query(space.parse_arch("2w2a"))["bitops"], table.query(space.parse_arch("4w4a"))["bitops"]
    fixed = 32 * 32 * 64 * 3 * 49 + 512 * 1000
    assert four == 4 * two and two == 4 * (table.query(space.parse_arch("2w2a")).macs - fixed)


def test_exported_config_lists_every_layers_bit_widths_and_reloads():
    space = create_space("resnet18-quant", **TINY)
    net = _randomize(Supernet(space)).eval()
    arch = space.parse_arch("w1a2@0.5,w2a4@1.0,w3a4@1.5,w4a4@0.5")
    model = export_model(net, arch).eval()
    rows = model.config["bit_widths"]
    assert [(r["weight_bits"], r["act_bits"]) for r in rows] == [(32, 32), (1, 2), (2, 4), (3, 4), (4, 4), (32, 32)]
    assert rows[0]["full_precision"] and rows[-1]["full_precision"]
    again = StandaloneNet(model.config)
    again.load_state_dict(model.state_dict())
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(again.eval()(x), model(x))
    assert "bit_widths" not in standalone_config(
        create_space("spos-shufflenet", preset="fashion-mnist"),
        create_space("spos-shufflenet", preset="fashion-mnist").parse_arch("spos-searched"),
    )


def test_table6_uniform_baselines_reproduce_in_binary_giga():
    """SPOS Table 6's kWkA BitOps are ours in units of 2^30 (every res-block conv, shortcuts included;
    stem and fc excluded), computed here from the block formula checked against the cost table above."""
    from supernet.cost import parse_quantity

    def quantized_macs(stages):
        cin, size, total = 64, 56, 0
        for cout, depth, stride in stages:
            for i in range(depth):
                s = stride if i == 0 else 1
                total += _basic_block_macs(cin, cout, cout, s, size)
                cin, size = cout, size // s
        return total

    r18 = quantized_macs(((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)))
    r34 = quantized_macs(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)))
    paper = {(r18, 2): 6.32, (r18, 3): 14.21, (r18, 4): 25.27, (r34, 2): 13.21, (r34, 3): 29.72, (r34, 4): 52.83}
    for (macs, k), giga in paper.items():
        assert round(macs * k * k / 2**30, 2) == giga
    assert parse_quantity("6.32Gi") == round(6.32 * 2**30)
