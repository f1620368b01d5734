"""SPOS channel search (Fig. 3b): sliced width choices, their export, and steps that leave the rest alone."""

from __future__ import annotations

import random

import pytest
import torch

from supernet.core.errors import ConfigError, SpaceError
from supernet.cost import CostTable
from supernet.model.bn import recalibrate_path
from supernet.model.export import export_model
from supernet.model.supernet import Supernet, SupernetOptions
from supernet.space import create_space

torch.manual_seed(0)
TINY = {"preset": "fashion-mnist", "layers_per_stage": (1, 1, 2, 1), "head_channels": 32}


def _space(channels: str = "joint"):
    return create_space("spos-shufflenet", channels=channels, **TINY)


def _randomize(net: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.5, 0.5, generator=g)
    return net


def test_channel_modes_give_table4_spaces():
    sizes = {mode: _space(mode).size for mode in ("none", "search", "joint")}
    n = _space().num_layers
    assert sizes == {"none": 4**n, "search": 8**n, "joint": 32**n}
    assert _space("search").layers[0].choices == tuple(
        f"choice_3@{s}" for s in ("0.2", "0.4", "0.6", "0.8", "1.0", "1.2", "1.4", "1.6")
    )
    # block search keeps its op names and fingerprint (no channel options recorded)
    assert "channels" not in create_space("spos-shufflenet", **TINY).options
    with pytest.raises(SpaceError, match="channels must be one of"):
        _space("wide")


def test_width_choices_share_one_block_at_the_largest_width():
    space = _space()
    net = Supernet(space)
    assert sorted(net.choices[0]) == ["choice_3", "choice_5", "choice_7", "choice_x"]
    block = net.choices[1]["choice_3"]
    base = space.layers[1].out_channels // 2
    assert block.mid == int(base * 1.6 + 0.5)
    assert net.select(1, "choice_3@0.4") == {"mid": int(base * 0.4 + 0.5)}


@pytest.mark.parametrize("train_mode", [False, True])
def test_sliced_path_and_exported_model_give_identical_outputs(train_mode):
    space = _space()
    net = _randomize(Supernet(space)).train(train_mode)
    x = torch.randn(4, 1, 28, 28)
    rng = random.Random(0)
    for _ in range(3):
        arch = space.sample(rng)
        model = export_model(net, arch).train(train_mode)
        with torch.no_grad():
            torch.manual_seed(2)  # (the head's dropout, in train mode)
            out = net(x, arch)
            torch.manual_seed(2)
            assert torch.equal(out, model(x)), arch


def test_exported_blocks_are_plain_convs_of_the_chosen_width():
    space = _space()
    net = Supernet(space)
    arch = space.parse_arch(",".join(["choice_5@0.4"] * space.num_layers))
    model = export_model(net, arch)
    for i, block in enumerate(list(model)[1 : 1 + space.num_layers]):
        mid = net.select(i, "choice_5@0.4")["mid"]
        first = block.main[0][0]
        assert isinstance(first, torch.nn.Conv2d) and first.out_channels == mid
        assert torch.equal(first.weight, net.choices[i]["choice_5"].main[0][0].weight[:mid])


def test_cost_counts_the_chosen_widths_exactly():
    space = _space("search")
    table = CostTable.build(space)
    narrow = space.parse_arch(",".join(["choice_3@0.2"] * space.num_layers))
    wide = space.parse_arch(",".join(["choice_3@1.6"] * space.num_layers))
    net = Supernet(space)
    from supernet.cost import count_macs, count_params

    for arch in (narrow, wide):
        model = export_model(net, arch)
        cost = table.query(arch)
        assert (cost.macs, cost.params) == (count_macs(model, space.input_shape), count_params(model))
    assert table.query(narrow).macs < table.query(wide).macs


def test_sliced_step_leaves_unused_slice_and_its_momentum_bit_identical(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
    from train_helpers import make_trainer

    space = _space("search")
    net = Supernet(space)
    wide = space.parse_arch(",".join(["choice_3@1.6"] * space.num_layers))
    narrow = space.parse_arch(",".join(["choice_3@0.4"] * space.num_layers))
    paths = iter([[wide], [wide], [narrow]])
    trainer = make_trainer(net, tmp_path, steps=3, epochs=1)
    trainer.paths_for_step = lambda e, s: next(paths)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    for step in range(2):  # momentum everywhere first
        trainer._step(0, step, x, y)
    block = net.choices[2]["choice_3"]
    conv, bn = block.main[0][0], block.main[0][1]
    state = trainer.optimizer.state
    before = {
        "w": conv.weight.detach().clone(),
        "m": state[conv.weight]["momentum_buffer"].clone(),
        "bnw": bn.weight.detach().clone(),
        "rm": bn.running_mean.clone(),
    }
    last = block.main[2][0]  # its input channels are sliced
    before["last"] = state[last.weight]["momentum_buffer"].clone()
    trainer._step(0, 2, x, y)
    mid = net.select(2, "choice_3@0.4")["mid"]
    assert torch.equal(conv.weight[mid:], before["w"][mid:])
    assert torch.equal(state[conv.weight]["momentum_buffer"][mid:], before["m"][mid:])
    assert torch.equal(bn.weight[mid:], before["bnw"][mid:]) and torch.equal(bn.running_mean[mid:], before["rm"][mid:])
    assert not torch.equal(conv.weight[:mid], before["w"][:mid])  # the slice did move
    assert not torch.equal(bn.running_mean[:mid], before["rm"][:mid])
    assert torch.equal(state[last.weight]["momentum_buffer"][:, mid:], before["last"][:, mid:])
    assert not torch.equal(state[last.weight]["momentum_buffer"][:, :mid], before["last"][:, :mid])


def test_without_the_guard_weight_decay_would_move_the_unused_slice():
    """Why `OutsideSlicesKept` exists: a sliced parameter gets a (zero) gradient on its whole tensor."""
    space = _space("search")
    net = Supernet(space)
    narrow = space.parse_arch(",".join(["choice_3@0.4"] * space.num_layers))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    conv = net.choices[2]["choice_3"].main[0][0]
    before = conv.weight.detach().clone()
    torch.nn.functional.cross_entropy(net(torch.randn(4, 1, 28, 28), narrow), torch.arange(4)).backward()
    opt.step()
    mid = net.select(2, "choice_3@0.4")["mid"]
    assert not torch.equal(conv.weight[mid:], before[mid:])


def test_recalibration_re_estimates_only_the_slice():
    space = _space("search")
    net = _randomize(Supernet(space))
    arch = space.parse_arch(",".join(["choice_3@0.6"] * space.num_layers))
    bn = net.choices[0]["choice_3"].main[0][1]
    mid = net.select(0, "choice_3@0.6")["mid"]
    recalibrate_path(net, arch, [torch.randn(16, 1, 28, 28) for _ in range(2)])
    assert int(bn.num_batches_tracked) == 2
    assert torch.all(bn.running_mean[mid:] == 0) and torch.all(bn.running_var[mid:] == 1)  # reset, not updated
    assert not torch.all(bn.running_mean[:mid] == 0)


def test_interchoice_weights_are_refused_with_width_choices():
    with pytest.raises(ConfigError, match="width choices"):
        Supernet(_space("search"), SupernetOptions(interchoice="bias"))
