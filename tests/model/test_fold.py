"""SCARLET Lemma 1: an ELS (1x1 conv) followed by a conv equals one folded conv."""

import pytest
import torch
from torch import nn

from supernet.model.fold import fold_els_into_block, fold_els_into_conv
from supernet.ops.blocks import InvertedBottleneck, build_block


def _els(cin, cout, seed):
    torch.manual_seed(seed)
    els = build_block({"type": "els", "in": cin, "out": cout})
    nn.init.normal_(els.weight, std=0.5)  # far from its identity initialisation
    return els


def _trained(block, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.5, 0.5, generator=g)
    return block.eval()


@pytest.mark.parametrize("kernel,padding_mode", [(1, "zeros"), (3, "zeros"), (5, "zeros"), (3, "reflect")])
def test_fold_into_conv_is_exact_including_borders(kernel, padding_mode):
    els = _els(6, 8, seed=kernel)
    conv = nn.Conv2d(8, 5, kernel, stride=2, padding=kernel // 2, bias=True, padding_mode=padding_mode)
    x = torch.randn(3, 6, 9, 9, dtype=torch.float64)
    els, conv = els.double(), conv.double()
    folded = fold_els_into_conv(els, conv)
    assert folded.in_channels == 6 and folded.out_channels == 5 and folded.stride == (2, 2)
    torch.testing.assert_close(folded(x), conv(els(x)), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cin,mid,cout,stride", [(8, 8, 16, 1), (8, 8, 8, 2), (8, 12, 16, 2)])
def test_els_then_non_residual_bottleneck_equals_folded_block(cin, mid, cout, stride):
    """ELS (cin -> mid) then an MB block whose first op is its 1x1 expand conv (stride 2 or width change)."""
    els = _els(cin, mid, seed=stride)
    block = _trained(InvertedBottleneck(mid, cout, stride, expansion=3, kernel=5))
    assert not block.residual
    folded = fold_els_into_block(els, block)
    x = torch.randn(2, cin, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), block(els(x)), rtol=1e-5, atol=1e-5)
    assert folded.expand[0].in_channels == cin and block.expand[0].in_channels == mid  # the original is kept


def test_where_the_fold_is_not_exact():
    els = _els(8, 8, seed=0)
    # A residual around the next block: the skip branch still carries ELS(x).
    block = _trained(InvertedBottleneck(8, 8, 1, expansion=3, kernel=3))
    assert block.residual
    with pytest.raises(ValueError, match="residual"):
        fold_els_into_block(els, block)
    naive = InvertedBottleneck(8, 8, 1, expansion=3, kernel=3).eval()
    naive.load_state_dict(block.state_dict())
    naive.expand[0] = fold_els_into_conv(els, block.expand[0])
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        assert (naive(x) - block(els(x))).abs().max() > 1e-2
    # A depthwise first conv (expansion 1): the folded weight is dense, not depthwise.
    dw = InvertedBottleneck(8, 16, 2, expansion=1, kernel=3)
    with pytest.raises(ValueError, match="depthwise"):
        fold_els_into_block(els, dw)
    with pytest.raises(ValueError, match="groups"):
        fold_els_into_conv(els, dw.depthwise[0])
    # A strided ELS is not a pointwise map of the same pixels.
    with pytest.raises(ValueError, match="stride-1"):
        fold_els_into_conv(build_block({"type": "els", "in": 8, "out": 8, "stride": 2}), nn.Conv2d(8, 4, 3))
