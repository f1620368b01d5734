"""Inter-choice dependent weights (section 3.3) in NAS-Bench-201 cells: per-cell edge input biases
(depth D = 1..3, "previous" = the preceding edges in the benchmark's edge order) and split copies."""

import json
import random

import pytest
import torch
from train_helpers import make_trainer, split_and_perturbed, trained_like

from supernet.cost import CostTable, count_macs, count_params
from supernet.model.cell import CellSupernet
from supernet.model.export import export_model
from supernet.model.factory import build_supernet
from supernet.model.interchoice import START
from supernet.model.standalone import StandaloneNet
from supernet.model.supernet import MultiPath, SupernetOptions
from supernet.space import Arch, create_space
from supernet.train.hooks import SplitHook


@pytest.fixture(scope="module")
def space():
    return create_space("nas-bench-201", preset="fashion-mnist")  # 1 cell per stage: 3 cells of 8/16/32 channels


def _net(space, seed=0, **kw):
    torch.manual_seed(seed)
    return build_supernet(space, SupernetOptions(**kw))


def _batch(space, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *space.input_shape, generator=g), torch.randint(0, space.num_classes, (n,), generator=g)


def _archs(space, k, seed=0):
    rng = random.Random(seed)
    return [space.sample(rng) for _ in range(k)]


NO_NONE = Arch(("nor_conv_3x3", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3", "skip_connect"))


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_each_cell_has_its_own_tables_of_edge_contexts(space, depth):
    net = _net(space, interchoice="bias", interchoice_depth=depth)
    cells = net.cells()
    widths = [b["channels"] for b in space.body if b["type"] == "cell"]
    assert len(cells) == 3 and widths == [8, 16, 32]
    n_ops = len(space.layers[0].choices)  # 5, `none` included
    for cell, width in zip(cells, widths):
        for edge, table in enumerate(cell.biases.tables):
            n_prev = min(edge, depth)
            assert len(table) == n_ops**n_prev * (n_ops - 1)  # no vectors for a `none` current choice
            assert all(v.shape == (width,) and not v.any() for v in table.values())  # zero init
            assert not any(k.endswith("+none") for k in table)
            assert all(k.startswith(START + "+") for k in table) == (edge < depth)
            assert all(k.count("+") == n_prev + (edge < depth) for k in table)  # one `start` pads
    # distinct cells hold distinct parameters
    ids = [id(p) for cell in cells for p in cell.biases.parameters()]
    assert len(ids) == len(set(ids))
    assert "biases" not in dict(net.named_children())  # not the chain supernet's attribute


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_bias_is_selected_by_previous_and_current_edges_and_only_it_trains(space, depth):
    net = _net(space, interchoice="bias", interchoice_depth=depth).train()
    cell = net.cells()[1]
    arch = NO_NONE
    edge = 5
    assert cell.biases.key(0, arch.ops) == "+".join([START] * (depth > 0) + [arch[0]])
    assert cell.biases.key(edge, arch.ops) == "+".join(arch.ops[edge - depth : edge + 1])
    # changing the current edge's op or one of the D previous edges' selects another vector; older ones do not
    for j in range(edge + 1):
        other = next(op for op in space.layers[j].choices if op not in (arch[j], "none"))
        changed = cell.input_bias(edge, arch.replace(j, other).ops)
        assert (changed is cell.input_bias(edge, arch.ops)) == (j < edge - depth), j
    assert cell.input_bias(edge, arch.replace(4, "none").ops) is not None or depth == 0  # none as a previous choice
    x, y = _batch(space)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    for step_arch in (*_archs(space, 2, seed=3), arch):  # momentum on some other vectors first
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x, step_arch), y).backward()
        opt.step()
    before = {k: v.clone() for k, v in net.state_dict().items() if ".biases." in k}
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(net(x, arch), y).backward()
    used = set()
    for c, block in enumerate(net.body):
        if block in net.cells():
            used |= {f"body.{c}.biases.tables.{e}.{block.biases.key(e, arch.ops)}" for e in range(6)}
    assert len(used) == 6 * 3
    params = {k: p for k, p in net.named_parameters() if ".biases." in k}
    assert used <= params.keys()
    for name, p in params.items():
        assert (p.grad is not None) == (name in used), name
        assert name not in used or p.grad.abs().sum() > 0, name
    opt.step()
    after = net.state_dict()
    for name in before:  # weight decay and momentum moved nothing off the path
        assert (not torch.equal(before[name], after[name])) == (name in used), name


def test_none_edges_get_no_bias_and_multipath_is_refused(space):
    net = _net(space, interchoice="bias", interchoice_depth=2)
    arch = NO_NONE.replace(2, "none")
    cell = net.cells()[0]
    assert cell.input_bias(3, arch.ops) is not None
    with pytest.raises((KeyError, AttributeError)):
        cell.input_bias(2, arch.ops)  # never asked for by forward: a none edge runs nothing
    x, _ = _batch(space)
    assert net(x, arch).shape == (4, 10)
    with pytest.raises(ValueError, match="multi-path"):
        net(x, MultiPath(tuple((op,) for op in NO_NONE.ops)))


@pytest.mark.parametrize("depth", [1, 3])
def test_zero_init_equals_the_plain_supernet(space, depth):
    plain = _net(space, seed=1)
    biased = _net(space, seed=1, interchoice="bias", interchoice_depth=depth)
    missing, unexpected = biased.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(".biases." in k for k in missing)
    x, _ = _batch(space)
    for mode in (True, False):
        plain.train(mode), biased.train(mode)
        for arch in _archs(space, 4, seed=depth):
            with torch.no_grad():
                torch.testing.assert_close(biased(x, arch), plain(x, arch), rtol=0, atol=0)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_bias_export_equals_the_supernet_path(space, depth):
    net = trained_like(_net(space, interchoice="bias", interchoice_depth=depth), seed=depth)
    table = CostTable.build(space)
    x, _ = _batch(space, 3)
    for arch in [*_archs(space, 5, seed=depth), NO_NONE, Arch(("none",) * 6)]:
        model = export_model(net, arch).eval()
        with torch.no_grad():
            torch.testing.assert_close(model(x), net(x, arch), rtol=1e-5, atol=1e-5)
        cells = [b for b in model.config["blocks"] if b["type"] == "cell"]
        edges = [i for i, op in enumerate(arch.ops) if op != "none"]
        assert all(c["bias_edges"] == edges for c in cells)
        # the arch's vectors are constants of the stand-alone cells (C params each, no MACs)
        for cell, target in zip(net.cells(), [m for m in model if hasattr(m, "edge_bias") or hasattr(m, "edges")]):
            for i in edges:
                assert torch.equal(target.edge_bias[str(i)], cell.input_bias(i, arch.ops))
        cost = table.query(arch)
        assert count_macs(model, space.input_shape) == cost.macs
        assert count_params(model) == cost.params + sum(c["channels"] * len(c["bias_edges"]) for c in cells)
        # the config alone rebuilds it
        again = StandaloneNet(json.loads(json.dumps(model.config))).eval()
        again.load_state_dict(model.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)
    plain = export_model(_net(space), NO_NONE)  # biases off: the plain config, no extra keys
    assert all("bias_edges" not in b for b in plain.config["blocks"])
    assert not any("edge_bias" in k for k in plain.state_dict())


def test_split_copies_are_independent_and_export_picks_the_right_copy(space):
    net = _net(space, interchoice="split")
    original = {k: v.clone() for k, v in net.state_dict().items()}
    net.split_interchoice()
    edge, cell_index = 3, 0
    c = next(i for i, b in enumerate(space.body) if b["type"] == "cell")
    cell = net.cells()[cell_index]
    prev_choices = space.layers[edge - 1].choices
    assert set(cell.ops[edge]["nor_conv_3x3"]) == set(prev_choices)  # `none` included, as a previous choice
    assert set(cell.ops[0]["nor_conv_3x3"]) == {START}
    assert "none" not in cell.ops[edge]
    for name in prev_choices:  # every copy starts as the original
        state = cell.ops[edge]["nor_conv_3x3"][name].state_dict()
        assert all(torch.equal(v, original[f"body.{c}.ops.{edge}.nor_conv_3x3.{k}"]) for k, v in state.items())
    arch = NO_NONE.replace(edge, "nor_conv_3x3")
    x, y = _batch(space)
    torch.nn.functional.cross_entropy(net.train()(x, arch), y).backward()
    for name, twin in cell.ops[edge]["nor_conv_3x3"].items():
        grads = [p.grad is not None for p in twin.parameters()]
        assert all(grads) if name == arch[edge - 1] else not any(grads), name
    assert len(list(net.candidate_parameters(edge, "nor_conv_3x3"))) == 3 * 3 * len(prev_choices)  # conv, bn w/b

    net = split_and_perturbed(_net(space, interchoice="split"))
    x, _ = _batch(space, 3)
    for arch in [*_archs(space, 5, seed=11), NO_NONE]:
        arch = arch.replace(edge, "nor_conv_1x1")
        model = export_model(net, arch).eval()
        with torch.no_grad():
            torch.testing.assert_close(model(x), net(x, arch), rtol=1e-5, atol=1e-5)
        assert all("bias_edges" not in b for b in model.config["blocks"])
        target = next(m for m in model if hasattr(m, "edges")).ops[edge]["nor_conv_1x1"]
        copies = net.cells()[0].ops[edge]["nor_conv_1x1"]
        chosen = copies[arch[edge - 1]]
        assert all(torch.equal(a, b) for a, b in zip(target.state_dict().values(), chosen.state_dict().values()))
        other = next(m for n, m in copies.items() if n != arch[edge - 1])
        assert not all(torch.equal(a, b) for a, b in zip(target.state_dict().values(), other.state_dict().values()))


def test_split_state_dict_loads_into_a_fresh_supernet_and_the_hook_splits(space, tmp_path):
    net = split_and_perturbed(_net(space, interchoice="split"))
    fresh = _net(space, interchoice="split").eval()
    fresh.load_state_dict(net.state_dict())  # rebuilds the split structure first
    assert fresh.is_split
    x, _ = _batch(space)
    arch = _archs(space, 1, seed=5)[0]
    with torch.no_grad():
        torch.testing.assert_close(fresh(x, arch), net(x, arch), rtol=0, atol=0)
    net = _net(space, interchoice="split", split_epoch=1)
    assert isinstance(net, CellSupernet)
    trainer = make_trainer(net, tmp_path, steps=1, epochs=2, hooks=[SplitHook(net, 1)])
    trainer.fit()
    assert net.is_split
    bufs = [st["momentum_buffer"] for st in trainer.optimizer.state.values() if "momentum_buffer" in st]
    assert len({b.data_ptr() for b in bufs}) == len(bufs) > 0
