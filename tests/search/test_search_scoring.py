"""Issue 31's scoring choices on a supernet trained on strings: twins scored as one network, BN with batch
statistics, validation loss as the score."""

import math

import pytest
import torch
from torch import nn

from supernet.config.schema import load_config
from supernet.core.errors import ConfigError
from supernet.model.supernet import Supernet, SupernetOptions
from supernet.search import supernet_evaluator as E
from supernet.space import create_space

MACRO = dict(width=0.125, resolution=16, head_channels=32)


@pytest.fixture(scope="module")
def space():
    return create_space("nas-bench-macro", **MACRO)  # stages of 2, 3, 3 layers


def _trained_like(net: Supernet, seed: int = 0) -> Supernet:
    """Random BN statistics and affine values, so spellings and BN modes differ as after training."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return net.eval()


def _evaluator(space, **settings):
    torch.manual_seed(0)
    net = _trained_like(Supernet(space, SupernetOptions()))
    g = torch.Generator().manual_seed(1)
    recal = [torch.randn(8, *space.input_shape, generator=g) for _ in range(2)]
    val = [
        (torch.randn(16, *space.input_shape, generator=g), torch.randint(0, 10, (16,), generator=g)) for _ in range(2)
    ]
    return E.SupernetEvaluator(net, recal, val, **settings)


def test_equivalent_spellings_are_every_placement_of_each_stages_identities(space):
    arch = space.parse_arch("10201201")  # stages [1, 0], [2, 0, 1], [2, 0, 1]
    spellings = E.equivalent_spellings(space, arch)
    assert arch in spellings and len(set(spellings)) == len(spellings)
    assert {space.canonical(s) for s in spellings} == {space.canonical(arch)}
    # stage 0 [1, 0]: one way; stages 1 and 2: the first layer stays, the 1 goes to either later slot
    assert len(spellings) == 4
    deep_ids = space.parse_arch("10200100")  # stage 1 [2, 0, 0]: first fixed, no op to move; stage 2 [1, 0, 0]
    assert E.equivalent_spellings(space, deep_ids) == [deep_ids]
    moved = space.parse_arch("12020010")  # stage 1 [0, 2, 0]: the 2 in slot 3 or 4; stage 2 [0, 1, 0]: 2 ways
    got = E.equivalent_spellings(space, moved)
    assert len(got) == 4 and moved in got
    assert {space.canonical(s) for s in got} == {space.canonical(moved)}
    assert len(E.equivalent_spellings(space, moved, limit=3)) == 3


def test_twins_canonical_scores_every_spelling_alike_and_spelling_does_not(space):
    a, b = space.parse_arch("12020010"), space.parse_arch("12002001")  # one network, two spellings
    assert space.canonical(a) == space.canonical(b) and a != b
    plain = _evaluator(space, metric="loss")
    assert plain.evaluate(a) != plain.evaluate(b)  # other weights, other score
    one = _evaluator(space, twins="canonical", metric="loss")
    assert one.evaluate(a) == one.evaluate(b) == plain.evaluate(space.canonical(a))


def test_twins_mean_is_the_mean_over_the_networks_spellings(space):
    arch = space.parse_arch("12020010")
    plain = _evaluator(space, metric="loss")
    expected = sum(plain.evaluate(s) for s in E.equivalent_spellings(space, arch)) / 4
    mean = _evaluator(space, twins="mean", metric="loss")
    assert mean.evaluate(arch) == pytest.approx(expected, rel=1e-12)


def test_loss_metric_is_exp_of_minus_the_mean_cross_entropy(space):
    ev = _evaluator(space, metric="loss", bn="batch")
    arch = space.parse_arch("12020010")
    with torch.no_grad():
        ce = [
            nn.functional.cross_entropy(_forward_batch_stats(ev.supernet, x, arch), y, reduction="sum")
            for x, y in ev.val_batches
        ]
    assert ev.evaluate(arch) == pytest.approx(math.exp(-sum(c.item() for c in ce) / 32), rel=1e-5)


def _forward_batch_stats(net, x, arch):
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.train()
        m.momentum = 0.0
    try:
        return net(x, arch)
    finally:
        for m in bns:
            m.eval()
            m.momentum = 0.1


def test_batch_statistics_leave_running_statistics_alone_and_differ_from_recalibration(space):
    arch = space.parse_arch("12020010")
    batch = _evaluator(space, bn="batch", metric="loss")
    before = {k: v.clone() for k, v in batch.supernet.state_dict().items()}
    score = batch.evaluate(arch)
    after = batch.supernet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing moved, not even num_batches_tracked
    assert all(not m.training for m in batch.supernet.modules() if isinstance(m, nn.BatchNorm2d))
    assert score != _evaluator(space, metric="loss").evaluate(arch)


def test_bad_words_and_twins_without_plain_identities_are_refused(space):
    with pytest.raises(ConfigError, match="eval.twins must be one of spelling, canonical, mean"):
        _evaluator(space, twins="all")
    with pytest.raises(ConfigError, match="config field 'eval.bn' must be one of recalibrate, batch, got 'none'"):
        load_config(None, ["eval.bn=none"])
    els = Supernet(space, SupernetOptions(identity="els"))
    with pytest.raises(ConfigError, match="identity: skip"):
        E.SupernetEvaluator(els, [], [], twins="canonical")
    assert load_config(None, ["eval.twins=mean", "eval.metric=loss"]).eval.twins == "mean"


@pytest.mark.parametrize(
    "settings",
    [dict(metric="loss"), dict(twins="canonical"), dict(twins="mean", metric="loss"), dict(twins="mean")],
    ids=["loss", "canonical", "mean-loss", "mean"],
)
def test_batch_scoring_of_twins_and_loss_equals_one_at_a_time_on_the_prefix_tree(space, settings, caplog):
    """Issue 30's leftover: the prefix tree scores the loss metric and every spelling of a twin network too,
    the same numbers as one arch at a time (in two validation chunks here)."""
    archs = [space.parse_arch(s) for s in ("12020010", "12002001", "22111100", "10200201")]
    one_by_one = _evaluator(space, **settings)
    expected = [one_by_one.evaluate(a) for a in archs]
    batch = _evaluator(space, chunk_images=16, **settings)
    assert batch.evaluate_many(archs) == expected
    assert "one arch at a time" not in caplog.text
    if settings.get("twins") == "mean":  # a spelling scored for one network is reused, not scored again
        assert len(batch._by_path) == len({p for a in archs for p in E.equivalent_spellings(space, a)})


def test_batch_scoring_with_batch_statistics_scores_one_at_a_time_and_says_so(space, caplog):
    archs = [space.parse_arch(s) for s in ("12020010", "12002001", "22111100")]
    one_by_one = _evaluator(space, bn="batch", metric="loss")
    expected = [one_by_one.evaluate(a) for a in archs]
    assert _evaluator(space, bn="batch", metric="loss").evaluate_many(archs) == expected
    assert "eval.bn: batch" in caplog.text


def test_racing_with_the_loss_metric_scores_every_image(space):
    """A loss has no bound that racing could stop at: every score is full, as without racing."""
    archs = [space.parse_arch(s) for s in ("12020010", "22111100")]
    raced = _evaluator(space, metric="loss").race_many(archs, threshold=0.99)
    assert [n for _, n in raced] == [32, 32]
    assert [s for s, _ in raced] == _evaluator(space, metric="loss").evaluate_many(archs)
