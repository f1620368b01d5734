"""Prefix-tree scoring (issue 30.1): the same scores, and the same logits bit for bit, as one at a time."""

from __future__ import annotations

import random

import pytest
import torch

from supernet.model.bn import recalibrate_path
from supernet.model.fewshot import FewShotSupernet, few_shot_parts, part_choices
from supernet.model.supernet import Supernet, SupernetOptions
from supernet.search.prefix_tree import PrefixTreeScorer, prefix_tree
from supernet.search.supernet_evaluator import SupernetEvaluator
from supernet.space import create_space

TINY = dict(preset="fashion-mnist", width=0.25, head_channels=32, layers_per_stage=(1, 2, 1, 2, 1, 1), stem_stride=2)


def tiny_space():
    return create_space("scarlet-s1", **TINY)


def _randomize(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BN statistics/affines and inter-choice vectors, so that archs score differently."""
    g = torch.Generator().manual_seed(seed)
    for name, p in net.named_parameters():
        if "biases" in name:
            p.data.uniform_(-1.0, 1.0, generator=g)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            if m.weight is not None:
                m.weight.data.uniform_(0.5, 1.5, generator=g)
                m.bias.data.uniform_(-0.5, 0.5, generator=g)
    return net


def _data(seed: int = 0, shape=(1, 28, 28)):
    g = torch.Generator().manual_seed(seed)
    recal = [torch.randn(8, *shape, generator=g) for _ in range(2)]
    sizes = [8, 8, 5]  # a ragged last batch
    val = [(torch.randn(n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g)) for n in sizes]
    return recal, val


def _archs(space, n: int, seed: int = 0):
    """Random archs plus mutants of the first (long shared prefixes) and one duplicate."""
    rng = random.Random(seed)
    archs = [space.sample(rng) for _ in range(n)]
    base = list(archs[0].ops)
    for layer in (len(base) - 1, len(base) // 2):
        ops = list(base)
        ops[layer] = next(c for c in space.layers[layer].choices if c != base[layer])
        archs.append(space.parse_arch(",".join(ops)))
    return archs + [archs[1]]


def _chain_nets():
    s1 = tiny_space()
    split = _randomize(Supernet(s1, SupernetOptions(interchoice="split")))
    split.split_interchoice()
    _randomize(split, 3)
    shuffle = create_space("spos-shufflenet", channels="joint", preset="fashion-mnist", layers_per_stage=(1, 1, 2, 1))
    return {
        "els": _randomize(Supernet(s1, SupernetOptions(identity="els"))),
        "bias-pre-act-depth2": _randomize(
            Supernet(s1, SupernetOptions(interchoice="bias", interchoice_bias_at="pre_act", interchoice_depth=2))
        ),
        "split": split,
        "sliced": _randomize(Supernet(shuffle)),
        "canonical": _randomize(Supernet(s1, SupernetOptions(canonical=True))),
    }


NETS = _chain_nets()


def _one_at_a_time_logits(net, arch, recal, val):
    recalibrate_path(net, arch, recal)
    net.eval()
    with torch.no_grad():
        return [net(x, arch) for x, _ in val]


class LogitsScorer(PrefixTreeScorer):
    """Keeps every leaf's logits (per validation chunk) besides scoring."""

    logits: dict

    def _leaf(self, ops, recal, val, labels, first, keep):
        head = self.net.head
        from supernet.model.bn import path_batchnorms

        _, out = self._node(("head", *ops), path_batchnorms(head), head, recal, val, first, keep)
        self.logits.setdefault(ops, []).extend(out)
        super()._leaf(ops, recal, val, labels, first, keep)


@pytest.mark.parametrize("chunk_images", [1024, 10])  # one validation chunk; several (restored statistics)
@pytest.mark.parametrize("kind", sorted(NETS))
def test_prefix_tree_logits_and_scores_equal_one_at_a_time(kind, chunk_images):
    net = NETS[kind]
    recal, val = _data()
    archs = _archs(net.space, 3)
    scorer = LogitsScorer(net, recal, val, SupernetEvaluator(net, [], []).runtime, chunk_images)
    scorer.logits = {}
    paths = [net.path_of(a).ops for a in archs]
    tree_scores = scorer.score(paths)
    one = SupernetEvaluator(net, recal, val, reset=True)
    expected = [one.evaluate(a) for a in archs]
    assert tree_scores == expected
    assert len(set(expected)) > 1  # the archs differ, so equal scores are not a coincidence
    for arch, ops in zip(archs, paths):
        reference = _one_at_a_time_logits(net, arch, recal, val)
        assert all(torch.equal(a, b) for a, b in zip(scorer.logits[ops], reference, strict=True)), (kind, arch)
    assert SupernetEvaluator(net, recal, val, reset=True, chunk_images=chunk_images).evaluate_many(archs) == expected


def test_prefix_tree_runs_each_shared_prefix_once():
    net = NETS["els"]
    recal, val = _data()
    archs = _archs(net.space, 4)
    calls = {"stem": 0}
    hook = net.stem.register_forward_hook(lambda *a: calls.__setitem__("stem", calls["stem"] + 1))
    try:
        SupernetEvaluator(net, recal, val, reset=True).evaluate_many(archs)
    finally:
        hook.remove()
    assert calls["stem"] == len(recal) + len(val)  # once for all archs, not once per arch
    root = prefix_tree([a.ops for a in archs])
    assert len(root.children) == len({a.ops[0] for a in archs})


def test_few_shot_parts_are_scored_on_their_own_trees():
    space = tiny_space()
    layers = [0]
    parts = {
        ops: _randomize(Supernet(space.restrict(part_choices(space, layers, ops))), seed=k)
        for k, ops in enumerate(few_shot_parts(space, layers))
    }
    net = FewShotSupernet(space, layers, parts)
    recal, val = _data()
    archs = _archs(space, 5)
    assert len({a.ops[0] for a in archs}) > 1  # several parts
    expected = [SupernetEvaluator(net, recal, val, reset=True).evaluate(a) for a in archs]
    assert SupernetEvaluator(net, recal, val, reset=True).evaluate_many(archs) == expected


@pytest.mark.parametrize("case", ["no-reset", "cell"])
def test_falls_back_to_one_at_a_time_and_says_so_once(case, caplog):
    if case == "cell":
        from supernet.model.cell import CellSupernet

        space = create_space("nas-bench-201", preset="fashion-mnist")
        net, reset = _randomize(CellSupernet(space)), True
    else:
        net, reset = NETS["els"], False
    recal, val = _data()
    archs = _archs(net.space, 3)
    evaluator = SupernetEvaluator(net, recal, val, reset=reset)
    got = evaluator.evaluate_many(archs)
    evaluator.evaluate_many(archs)
    said = [r.getMessage() for r in caplog.records if "one arch at a time" in r.getMessage()]
    assert len(said) == 1, said
    if reset:  # without reset each score depends on the ones before, so only compare with reset
        assert got == [SupernetEvaluator(net, recal, val, reset=True).evaluate(a) for a in archs]


def _val(batches: int, seed: int = 5):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 1, 28, 28, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(batches)]


def test_racing_keeps_every_score_that_can_reach_the_threshold_exact():
    net = NETS["els"]
    recal, _ = _data()
    val = _val(6)
    archs = _archs(net.space, 6)
    evaluator = SupernetEvaluator(net, recal, val, reset=True)
    full = evaluator.evaluate_many(archs)
    threshold = max(full)
    raced = evaluator.race_many(archs, threshold)
    for (score, images), exact in zip(raced, full):
        if images == evaluator.val_images:
            assert score == exact  # not dropped: the full score, bit for bit
        else:
            assert exact < threshold and score < threshold  # dropped: could not have reached it
    assert all(n == evaluator.val_images for (_, n), exact in zip(raced, full) if exact == threshold)
    # a threshold nothing reaches stops every arch with an error in the first batch after that batch
    assert {n for _, n in evaluator.race_many(archs, 1.0)} == {8}
    assert evaluator.race_many(archs, None) == [(s, evaluator.val_images) for s in full]
