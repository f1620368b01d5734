"""The counter's convention: MACs of conv and linear layers only; all trainable parameters."""

import pytest
import torch
from torch import nn

from supernet.cost import count_macs, count_params, output_shape
from supernet.ops.blocks import build_block


@pytest.mark.parametrize("stride", [1, 2])
def test_inverted_bottleneck_by_hand(stride):
    cin, cout, e, k, h = 8, 16, 3, 5, 10
    block = build_block({"type": "ibn", "in": cin, "out": cout, "stride": stride, "expansion": e, "kernel": k})
    mid = cin * e
    ho = (h + 2 * (k // 2) - k) // stride + 1
    expand = h * h * cin * mid  # 1x1 conv at input resolution
    depthwise = ho * ho * mid * k * k  # one kxk filter per channel
    project = ho * ho * mid * cout  # 1x1 linear projection
    # No MACs for BN, ReLU6 or the (absent here) residual add.
    assert count_macs(block, (cin, h, h)) == expand + depthwise + project
    weights = cin * mid + mid * k * k + mid * cout
    bn = 2 * mid + 2 * mid + 2 * cout  # BN weight + bias after each conv (running stats excluded)
    assert count_params(block) == weights + bn
    assert output_shape(block, (cin, h, h)) == (cout, ho, ho)


def test_residual_and_se_convention():
    # Residual block with SE: the SE 1x1 convs count (on a 1x1 map); mean, product and add do not.
    c, e, k, h = 8, 2, 3, 6
    block = build_block({"type": "ibn", "in": c, "out": c, "stride": 1, "expansion": e, "kernel": k, "se": True})
    mid, hidden = c * e, c * e // 4
    macs = h * h * c * mid + h * h * mid * k * k + mid * hidden + hidden * mid + h * h * mid * c
    assert count_macs(block, (c, h, h)) == macs
    params = c * mid + mid * k * k + mid * c + (mid * hidden + hidden) + (hidden * mid + mid) + 2 * (mid + mid + c)
    assert count_params(block) == params


@pytest.mark.parametrize("bias", [True, False])
def test_linear_macs(bias):
    layer = nn.Linear(37, 11, bias=bias)
    assert count_macs(layer, (37,)) == 37 * 11
    assert count_params(layer) == 37 * 11 + (11 if bias else 0)


def test_frozen_params_and_mode_restored():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4))
    net[0].weight.requires_grad_(False)
    assert count_params(net) == 8
    net.train()
    assert count_macs(net, (3, 5, 5)) == 3 * 3 * 3 * 4 * 9
    assert net.training and net[1].training
    assert int(net[1].num_batches_tracked) == 0  # ran in eval mode: no BN statistics update


def test_elementwise_ops_cost_nothing():
    class Elementwise(nn.Module):
        def forward(self, x):
            return torch.relu(x) * x.mean((2, 3), keepdim=True) + nn.functional.avg_pool2d(x, 2).sum()

    assert count_macs(Elementwise(), (4, 8, 8)) == 0
