"""Samplers: FairNAS fairness, SPOS uniform constraint sampling, SPOS path dropout."""

import collections
import itertools
import random

import pytest
import torch
from scipy import stats
from train_helpers import make_trainer, tiny_space

from supernet.config.schema import load_config
from supernet.core.errors import ConfigError
from supernet.model.supernet import MultiPath, Supernet, SupernetOptions
from supernet.space import Arch
from supernet.train.sampler import ConstrainedSampler, FairSampler, PathDropoutSampler, create_sampler, step_rng


def _trained_candidates(net, x, y, path):
    """(layer, op) pairs whose parameters receive a gradient from one path's loss."""
    net.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(net(x, path), y).backward()
    return {
        (i, op)
        for i, layer in enumerate(net.choices)
        for op, block in layer.items()
        if any(p.grad is not None for p in block.parameters())
    }


def test_fair_step_trains_every_candidate_exactly_once():
    space = tiny_space(identity_in="all")  # 7 candidates everywhere: the paper's case
    net = Supernet(space, SupernetOptions(identity="els"))  # every candidate has weights
    sampler = FairSampler(space)
    x, y = torch.randn(4, *space.input_shape), torch.randint(0, 10, (4,))
    for seed in range(3):
        counts = collections.Counter()
        paths = sampler.paths(step_rng(seed, 0, 0))
        assert len(paths) == 7
        for arch in paths:
            trained = _trained_candidates(net, x, y, arch)
            assert len(trained) == space.num_layers  # one candidate per layer per path
            counts.update(trained)
        assert set(counts) == {(i, op) for i, layer in enumerate(space.layers) for op in layer.choices}
        assert set(counts.values()) == {1}


def test_fair_rule_for_layers_with_fewer_candidates():
    space = tiny_space(identity_in="same-shape")  # 7 candidates (with id) where the shape is kept, 6 elsewhere
    assert {len(layer.choices) for layer in space.layers} == {6, 7}
    sampler = FairSampler(space)
    for seed in range(20):
        paths = sampler.paths(random.Random(seed))
        for i, layer in enumerate(space.layers):
            counts = collections.Counter(a[i] for a in paths)
            assert set(counts) == set(layer.choices)
            assert sorted(counts.values()) == [1] * (len(layer.choices) - 1) + [7 - len(layer.choices) + 1]


def test_fair_step_in_the_trainer_updates_every_candidate(tmp_path):
    space = tiny_space()
    net = Supernet(space)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    trainer = make_trainer(net, tmp_path, sampler=FairSampler(space), steps=1, epochs=1)
    trainer.fit()
    after = net.state_dict()
    for i, layer in enumerate(space.layers):
        for op in layer.choices:
            if list(net.choices[i][op].parameters()):
                keys = [k for k in before if k.startswith(f"choices.{i}.{op}.")]
                assert any(not torch.equal(before[k], after[k]) for k in keys), (i, op)


@pytest.fixture(scope="module")
def constrained():
    space = tiny_space()
    return space, ConstrainedSampler(space, "skip", bins=5)


def test_constrained_draws_fall_in_their_bins(constrained):
    space, sampler = constrained
    bins = sampler.bins
    assert bins[0][0] == sampler.table.macs_range()[0] and bins[-1][1] == sampler.table.macs_range()[1] + 1
    assert all(a < b for a, b in bins) and all(bins[i][1] == bins[i + 1][0] for i in range(4))
    hits = collections.Counter()
    rng = random.Random(0)
    for _ in range(300):
        b, arch = sampler.draw(rng)
        lo, hi = bins[b]
        assert lo <= sampler.table.query(arch).macs < hi
        hits[b] += 1
    assert set(hits) == set(range(5)) and min(hits.values()) > 30  # bins chosen uniformly
    assert sampler.paths(random.Random(1)) == [sampler.draw(random.Random(1))[1]]


def test_constrained_draws_are_uniform_within_a_bin():
    """Same distribution as the paper's redraw-until-it-fits: uniform over the archs of the bin."""
    full = tiny_space()
    space = full.restrict([layer.choices[:2] for layer in full.layers])  # 2^8 = 256 archs
    sampler = ConstrainedSampler(space, "skip", bins=3)
    macs = {
        arch: sampler.table.query(arch).macs
        for arch in (Arch(ops) for ops in itertools.product(*(l.choices for l in space.layers)))
    }
    rng = random.Random(0)
    draws = collections.defaultdict(collections.Counter)
    for _ in range(3000):
        b, arch = sampler.draw(rng)
        draws[b][arch] += 1
    for b, (lo, hi) in enumerate(sampler.bins):
        members = [a for a, m in macs.items() if lo <= m < hi]
        assert set(draws[b]) <= set(members)
        observed = [draws[b][a] for a in members]
        assert stats.chisquare(observed).pvalue > 1e-4, b


def test_constrained_sampler_config():
    assert len(create_sampler("uniform-constrained", tiny_space(), bins=2).bins) == 2
    with pytest.raises(ConfigError, match="train.sampler_options.bins' must be >= 1"):
        create_sampler("uniform-constrained", tiny_space(), bins=0)
    with pytest.raises(ConfigError, match="sampler 'uniform-constrained' has no option 'drop_rate'; options: bins"):
        create_sampler("uniform-constrained", tiny_space(), drop_rate=0.5)
    with pytest.raises(ConfigError, match="known: .*path-dropout"):
        create_sampler("nope", tiny_space())


def test_path_dropout_keeps_at_least_one_candidate_per_layer():
    space = tiny_space()
    rng = random.Random(0)
    kept = collections.Counter()
    for rate in (0.0, 0.5, 0.9, 1.0):
        sampler = PathDropoutSampler(space, rate)
        for _ in range(50):
            (path,) = sampler.paths(rng)
            assert isinstance(path, MultiPath) and len(path) == space.num_layers
            for ops, layer in zip(path.ops, space.layers):
                assert 1 <= len(ops) and set(ops) <= set(layer.choices) and len(set(ops)) == len(ops)
                if rate == 0.0:
                    assert ops == layer.choices
                if rate == 1.0:
                    assert len(ops) == 1
                kept[rate] += len(ops)
    assert kept[0.0] > kept[0.5] > kept[0.9] > kept[1.0] == 50 * space.num_layers
    with pytest.raises(ConfigError, match="drop_rate"):
        create_sampler("path-dropout", space, drop_rate=1.5)
    assert create_sampler("path-dropout", space, drop_rate=1.0).drop_rate == 1.0  # the config agrees (issue 27)
    assert load_config(None, ["train.sampler=path-dropout", "train.sampler_options.drop_rate=1.0"])


def test_path_dropout_forward_is_the_sum_of_the_kept_ops():
    space = tiny_space()
    net = Supernet(space).eval()
    for m in net.modules():  # non-zero residual branches, so that every kept op contributes
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    (path,) = PathDropoutSampler(space, 0.5).paths(random.Random(3))
    assert any(len(ops) > 1 for ops in path.ops)
    x = torch.randn(2, *space.input_shape)
    h = net.stem(x)
    for layer, ops in zip(net.choices, path.ops):
        outs = [layer[op](h) for op in ops]
        h = sum(outs[1:], outs[0])
    torch.testing.assert_close(net(x, path), net.head(h))
    single = MultiPath(tuple((a,) for a in space.sample(random.Random(4)).ops))
    arch = Arch(tuple(ops[0] for ops in single.ops))
    torch.testing.assert_close(net(x, single), net(x, arch))
    # Training a multi-path step: every kept op gets a gradient, every dropped op none.
    net.train().zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(net(x, path), torch.tensor([0, 1])).backward()
    for i, (layer, ops) in enumerate(zip(net.choices, path.ops)):
        for op, block in layer.items():
            grads = [p.grad is not None for p in block.parameters()]
            assert all(grads) if op in ops else not any(grads), (i, op)


def test_constrained_sampler_bins_quantized_spaces_by_bitops():
    # bit-widths change no MACs: MACs bins of resnet18-quant overlap heavily in BitOps, so SPOS's
    # uniform constraint sampling there bins the space's cost metric, BitOps
    from supernet.space import create_space

    options = {"layers_per_stage": [1, 1, 1, 1], "bits": [[1, 2], [4, 4]], "bottleneck_scales": [0.5, 1.5]}
    space = create_space("resnet18-quant", preset="fashion-mnist", **options)
    sampler = create_sampler("uniform-constrained", space, bins=4)
    low, high = sampler.table.range("bitops")
    assert sampler.metric == "bitops" and sampler.bins[0][0] == low and sampler.bins[-1][1] == high + 1
    rng = random.Random(0)
    for _ in range(100):
        b, arch = sampler.draw(rng)
        lo, hi = sampler.bins[b]
        assert lo <= sampler.table.value(arch, "bitops") < hi


def test_constrained_sampler_keeps_binning_macs_spaces_by_macs(constrained):
    space, sampler = constrained
    assert sampler.metric == "macs"
    by_macs = ConstrainedSampler(space, "skip", bins=5, table=sampler.table, metric="macs")
    assert by_macs.bins == sampler.bins
    assert [by_macs.draw(step_rng(0, 0, s)) for s in range(50)] == [sampler.draw(step_rng(0, 0, s)) for s in range(50)]
