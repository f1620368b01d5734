"""Cell spaces: NAS-Bench-201 (and its sub-spaces) and SCARLET's NAS-Bench-101 chain."""

import json
import random

import pytest
import torch
from torch import nn

from supernet.core.errors import SpaceError
from supernet.cost import CostTable
from supernet.cost.counter import count_macs, count_params
from supernet.model.bn import path_batchnorms, recalibrate_path
from supernet.model.cell import CellSupernet
from supernet.model.export import export_model, standalone_config
from supernet.model.factory import build_supernet
from supernet.model.standalone import StandaloneNet
from supernet.model.supernet import MultiPath, Supernet, SupernetOptions
from supernet.space import Arch, create_space
from tests.conftest import rebuilt_output_shape, run_main

NB201_STRING = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
NB201_OPS = ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")


def _small(name, **options):
    return create_space(name, preset="fashion-mnist", **options)


def _trained_like(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.5, 0.5, generator=g)
    return net.eval()


def _edge_ops(net, layer):
    return [cell.ops[layer] for cell in net.cells()]


# -- spaces ----------------------------------------------------------------------------------------
def test_nb201_sizes_and_subspaces():
    sizes = {"full": 5**6, "no-zero": 4**6, "only-conv": 2**6, "reduce-1": 4**6, "reduce-2": 4**6, "reduce-3": 3**6}
    for sub, size in sizes.items():
        space = create_space("nas-bench-201", subspace=sub)
        assert space.size == size and space.num_layers == 6 and space.topology == "cells"
    assert create_space("nas-bench-201", subspace="only-conv").layers[0].choices == ("nor_conv_1x1", "nor_conv_3x3")
    assert "none" not in create_space("nas-bench-201", subspace="no-zero").layers[0].choices
    assert "nor_conv_1x1" not in create_space("nas-bench-201", subspace="reduce-1").layers[0].choices
    assert "avg_pool_3x3" not in create_space("nas-bench-201", subspace="reduce-2").layers[0].choices
    with pytest.raises(SpaceError, match="subspace"):
        create_space("nas-bench-201", subspace="tiny")
    with pytest.raises(SpaceError, match="multiple of 4"):
        create_space("nas-bench-201", resolution=30)


def test_nb201_string_round_trip():
    space = create_space("nas-bench-201")
    arch = space.parse_arch(NB201_STRING)
    assert arch.ops == NB201_OPS
    assert space.format_arch(arch) == NB201_STRING
    assert space.parse_arch(arch.to_string()) == arch == space.parse_arch("3,3,4,1,3,1")
    assert space.parse_arch(space.format_arch(arch)) == arch
    # order within a node's group does not matter; whitespace around groups is ignored
    assert (
        space.parse_arch(
            "|nor_conv_3x3~0| + |avg_pool_3x3~1|nor_conv_3x3~0| + |skip_connect~2|nor_conv_3x3~1|skip_connect~0|"
        )
        == arch
    )
    rng = random.Random(0)
    for _ in range(50):
        a = space.sample(rng)
        assert space.parse_arch(space.format_arch(a)) == a
    for bad in (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",  # missing 2<-1
        "|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        "|nor_conv_3x3~0|+|conv_5x5~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        "nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    ):
        with pytest.raises(SpaceError):
            space.parse_arch(bad)
    with pytest.raises(SpaceError):  # a member of the full space, not of only-conv
        create_space("nas-bench-201", subspace="only-conv").parse_arch(NB201_STRING)
    assert create_space("scarlet-s1").format_arch(create_space("scarlet-s1").sample(rng)).count(",") == 18


def test_nb201_layout():
    space = create_space("nas-bench-201")
    assert space.input_shape == (3, 32, 32) and space.num_classes == 10
    cells = [b["channels"] for b in space.body if b["type"] == "cell"]
    assert cells == [16] * 5 + [32] * 5 + [64] * 5
    assert [(b["in"], b["out"]) for b in space.body if b["type"] == "nb201_resblock"] == [(16, 32), (32, 64)]
    assert [b["type"] for b in space.head] == ["bn_act", "pool", "linear"]
    assert space.stem[0]["out"] == 16 and space.stem[0]["act"] is None
    assert len([b for b in create_space("nas-bench-201", cells_per_stage=2).body if b["type"] == "cell"]) == 6
    assert "topology" not in create_space("nas-bench-macro").to_dict()  # chain fingerprints unchanged
    assert "topology" in space.to_dict()


def test_nb201_published_size():
    """NAS-Bench-201 reports 1.53M params / 220M FLOPs for the all-3x3-conv cell (N=5, CIFAR-10)."""
    space = create_space("nas-bench-201")
    model = StandaloneNet(standalone_config(space, space.parse_arch(",".join(["nor_conv_3x3"] * 6))))
    assert count_params(model) == 1_531_546
    assert count_macs(model, space.input_shape) == 220_119_680


def test_nb101_chain_space():
    space = create_space("nas-bench-101-chain")
    assert space.size == 3**5 and space.num_layers == 5 and space.layers[0].choices == ("conv1x1", "conv3x3", "skip")
    assert [b["type"] for b in space.body] == ["cell"] * 3 + ["maxpool"] + ["cell"] * 3 + ["maxpool"] + ["cell"] * 3
    cells = [b for b in space.body if b["type"] == "cell"]
    assert [c["channels"] for c in cells] == [128] * 3 + [256] * 3 + [512] * 3
    assert [(c["pre"]["in"], c["pre"]["out"]) for c in cells][2:5] == [(128, 128), (128, 256), (256, 256)]
    assert all(c["edges"] == [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]] for c in cells)
    assert space.stem[0]["out"] == 128 and space.stem[0]["act"] == "relu"
    assert [c["channels"] for c in _small("nas-bench-101-chain").body if c["type"] == "cell"][::3] == [16, 32, 64]


# -- supernet ----------------------------------------------------------------------------------------
def test_factory_dispatches_on_topology():
    assert type(build_supernet(_small("scarlet-s1"))) is Supernet
    assert type(build_supernet(_small("nas-bench-201"))) is CellSupernet
    # inter-choice weights work in cell spaces too (tests/train/test_train_cell_interchoice.py)
    assert type(build_supernet(_small("nas-bench-201"), SupernetOptions(interchoice="bias"))) is CellSupernet


def test_none_edges_run_nothing_and_cost_nothing():
    space = _small("nas-bench-201")
    net = build_supernet(space).eval()
    ran = []
    for cell in net.cells():
        for i, ops in enumerate(cell.ops):
            for op, module in ops.items():
                module.register_forward_hook(lambda m, a, o, key=(i, op): ran.append(key))
    arch = Arch(("none", "nor_conv_3x3", "none", "skip_connect", "none", "avg_pool_3x3"))
    x = torch.randn(2, *space.input_shape)
    assert net(x, arch).shape == (2, 10)
    assert set(ran) == {(1, "nor_conv_3x3"), (3, "skip_connect"), (5, "avg_pool_3x3")}
    assert len(ran) == 3 * len(net.cells())
    assert all("none" not in ops for cell in net.cells() for ops in cell.ops)
    table = CostTable.build(space)
    assert all(table.layer_costs(m)[i, 0] == 0 for m in ("macs", "params") for i in range(6))  # none: index 0
    # an all-none cell outputs zeros: the stand-alone model is stem + resblocks + head only
    zero = Arch(("none",) * 6)
    assert table.query(zero).params == count_params(export_model(net, zero)) == table.fixed("params")
    cell = net.cells()[0]
    assert torch.equal(
        cell(torch.randn(2, cell_ch := space.body[0]["channels"], 7, 7), zero.ops), torch.zeros(2, cell_ch, 7, 7)
    )
    with pytest.raises(ValueError, match="no op"):
        net(x, Arch(("nor_conv_5x5",) * 6))


def test_multipath_sums_ops_per_edge():
    space = _small("nas-bench-201")
    net = _trained_like(build_supernet(space))
    x = torch.randn(2, *space.input_shape)
    cell = net.cells()[0]
    h = torch.randn(2, 8, 7, 7)
    a, b = space.sample(random.Random(1)), space.sample(random.Random(2))
    both = MultiPath(tuple((p, q) if p != q else (p,) for p, q in zip(a.ops, b.ops)))
    assert net(x, both).shape == (2, 10)
    # node 1 = conv(h) [+ h], node 2 = node 1, node 3 = node 2
    only1 = Arch(("nor_conv_1x1", "none", "skip_connect", "none", "none", "skip_connect"))
    two = MultiPath(
        (("nor_conv_1x1", "skip_connect"), ("none",), ("skip_connect",), ("none",), ("none",), ("skip_connect",))
    )
    torch.testing.assert_close(cell(h, two.ops), cell(h, only1.ops) + h)


@pytest.mark.parametrize(
    "name,options",
    [
        ("nas-bench-201", {}),
        ("nas-bench-201", {"subspace": "only-conv"}),
        ("nas-bench-201", {"cells_per_stage": 2}),
        ("nas-bench-101-chain", {}),
    ],
)
def test_export_equals_supernet_and_costs_are_additive(name, options):
    space = _small(name, **options)
    table = CostTable.build(space)
    net = _trained_like(build_supernet(space))
    x = torch.randn(3, *space.input_shape)
    rng = random.Random(7)
    archs = [space.sample(rng) for _ in range(6)] + [Arch(tuple(l.choices[-1] for l in space.layers))]
    for arch in archs:
        model = export_model(net, arch).eval()
        assert count_macs(model, space.input_shape) == table.query(arch).macs, arch
        assert count_params(model) == table.query(arch).params, arch
        with torch.no_grad():
            torch.testing.assert_close(model(x), net(x, arch), rtol=1e-4, atol=1e-5)
        # the config alone rebuilds it: load the exported weights into a model built from the JSON
        again = StandaloneNet(json.loads(json.dumps(model.config))).eval()
        again.load_state_dict(model.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(again(x), model(x))


def test_training_step_touches_only_the_sampled_ops():
    space = _small("nas-bench-201")
    net = build_supernet(space).train()
    arch = Arch(("nor_conv_3x3", "none", "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "nor_conv_3x3"))
    x, y = torch.randn(4, *space.input_shape), torch.randint(0, 10, (4,))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    opt.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(net(x, arch), y).backward()
    opt.step()
    for layer, chosen in enumerate(arch.ops):
        for op in space.layers[layer].choices:
            params = list(net.candidate_parameters(layer, op))
            if op == chosen:
                assert all(p.grad is not None for p in params), (layer, op)
            else:
                assert all(p.grad is None for p in params), (layer, op)
    assert all(p.grad is not None for p in net.stem.parameters())
    assert all(p.grad is not None for p in net.head.parameters())


def test_nb101_chain_els_vs_skip():
    space = _small("nas-bench-101-chain")
    torch.manual_seed(0)
    skip = build_supernet(space, SupernetOptions("skip"))
    els = build_supernet(space, SupernetOptions("els"))
    cell = els.cells()[0]
    assert isinstance(cell.ops[0]["skip"], nn.Conv2d) and cell.ops[0]["skip"].bias is None
    assert isinstance(skip.cells()[0].ops[0]["skip"], nn.Identity)
    assert len(list(els.candidate_parameters(2, "skip"))) == 9 and not list(skip.candidate_parameters(2, "skip"))
    missing, unexpected = els.load_state_dict(skip.state_dict(), strict=False)
    assert not unexpected and missing and all(".skip." in k for k in missing)
    arch = space.parse_arch("skip,conv3x3,skip,skip,conv1x1")
    x = torch.randn(2, *space.input_shape)
    skip.eval(), els.eval()
    with torch.no_grad():  # a fresh ELS is the identity
        torch.testing.assert_close(els(x, arch), skip(x, arch))
    # stand-alone models fold ELS away: same model, same cost
    exported = export_model(els, arch)
    assert count_params(exported) == count_params(export_model(skip, arch))
    assert CostTable.build(space, "els").query(arch) == CostTable.build(space, "skip").query(arch)
    with torch.no_grad():
        torch.testing.assert_close(exported.eval()(x), skip(x, arch))


def test_bn_recalibration_through_path_modules():
    space = _small("nas-bench-201")
    net = build_supernet(space)
    arch = Arch(("nor_conv_3x3", "none", "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "nor_conv_3x3"))
    on_path = path_batchnorms(net.path_modules(arch))
    off_path = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d) and all(m is not b for b in on_path)]
    cell = net.cells()[0]
    assert any(m is cell.ops[0]["nor_conv_3x3"][2] for m in on_path)
    assert any(m is cell.ops[0]["nor_conv_1x1"][2] for m in off_path)
    assert len(on_path) == 1 + 2 * 2 + 3 * len(net.cells()) + 1  # stem, resblocks, 3 convs per cell, head
    batches = [torch.randn(8, *space.input_shape) + 1 for _ in range(3)]
    recalibrate_path(net, arch, batches)
    assert all(bn.num_batches_tracked == 3 and bn.running_mean.abs().sum() > 0 for bn in on_path)
    assert all(bn.num_batches_tracked == 0 and bn.running_mean.abs().sum() == 0 for bn in off_path)


def test_cell_models_rebuild_from_json_in_a_fresh_process():
    space = _small("nas-bench-201")
    assert rebuilt_output_shape(standalone_config(space, space.parse_arch(NB201_STRING))) == "(2, 10)"


def test_cli_lists_cell_spaces_and_prices_the_benchmark_string():
    out = run_main("spaces", "--json", code=0)
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["nas-bench-201"]["size"] == 5**6 and rows["nas-bench-101-chain"]["size"] == 3**5
    out = run_main("cost", "--space", "nas-bench-201", "--arch", NB201_STRING, "--json", code=0)
    result = json.loads(out.stdout)
    assert result["indices"] == [3, 3, 4, 1, 3, 1] and result["macs"] > 0
