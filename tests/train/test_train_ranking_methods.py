"""Issue 31's training arms against the depth bias: an identity probability below uniform, deep-first
(progressive shrinking in depth) and the pairwise ranking loss with a cost prior."""

import collections
import json
import random
from dataclasses import asdict

import pytest
import torch
from train_helpers import make_trainer

from supernet.config.schema import load_config
from supernet.core.errors import ConfigError
from supernet.model.supernet import Supernet, SupernetOptions
from supernet.runs.build import config_hash
from supernet.space import create_space
from supernet.train.sampler import DeepFirstSampler, UniformSampler, create_sampler

MACRO = dict(width=0.125, resolution=16, head_channels=32)


def macro():
    return create_space("nas-bench-macro", **MACRO)


def depth(arch) -> int:
    return sum(op != "id" for op in arch)


def test_identity_prob_sets_how_often_a_layer_skips():
    space = macro()
    sampler = create_sampler("uniform", space, identity_prob=0.15)
    rng = random.Random(0)
    draws = [sampler.paths(rng)[0] for _ in range(6000)]
    for layer in range(space.num_layers):
        ops = collections.Counter(a[layer] for a in draws)
        assert 750 < ops["id"] < 1050, ops  # 15 % of 6000 = 900
        assert abs(ops["e3k3"] - ops["e6k5"]) < 350  # the other ops uniformly
    plain = [UniformSampler(space).paths(rng)[0] for _ in range(6000)]
    assert sum(map(depth, draws)) > sum(map(depth, plain)) * 1.2  # deeper than uniform's 1/3 identities


def test_uniform_sampler_default_is_the_spaces_own_draw_and_paths_counts_draws():
    space = macro()
    a, b = random.Random(3), random.Random(3)
    assert UniformSampler(space).paths(a) == [space.sample(b)]
    two = create_sampler("uniform", space, paths=2).paths(random.Random(4))
    assert len(two) == 2 and two[0] != two[1]
    with pytest.raises(ConfigError, match="identity_prob"):
        create_sampler("uniform", space, identity_prob=1.5)
    with pytest.raises(ConfigError, match="paths"):
        create_sampler("uniform", space, paths=0)


def test_deep_first_draws_full_depth_paths_then_uniform_ones():
    space = macro()
    sampler = create_sampler("deep-first", space, fraction=0.4)
    assert isinstance(sampler, DeepFirstSampler)
    rng = random.Random(0)
    early = [sampler.paths_at(rng, 0.39)[0] for _ in range(300)]
    late = [sampler.paths_at(rng, 0.4)[0] for _ in range(300)]
    assert all(depth(a) == space.num_layers for a in early)
    assert len({a[0] for a in early}) == 2  # every non-identity op of a layer
    assert sum(depth(a) < space.num_layers for a in late) > 250
    with pytest.raises(ConfigError, match="fraction"):
        create_sampler("deep-first", space, fraction=2)


def test_the_trainer_gives_deep_first_the_trainings_progress(tmp_path):
    """Through `supernet train`: the first half of the steps (fraction 0.5) trains full-depth paths only."""
    from supernet.jobs.train import train_supernet
    from tests.conftest import tiny_overrides

    overrides = tiny_overrides(train__sampler="deep-first", train__epochs=2, train__max_steps_per_epoch=4)
    cfg = load_config(None, [*overrides, "train.sampler_options={fraction: 0.5}"])
    train_supernet(cfg, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    paths = [r["paths"][0].split(",") for r in rows if r["type"] == "step"]
    assert len(paths) == 8
    assert all("id" not in p for p in paths[:4])
    assert any("id" in p for p in paths[4:])


def _ranked_trainer(tmp_path, weight):
    space = macro()
    torch.manual_seed(0)
    net = Supernet(space, SupernetOptions())
    trainer = make_trainer(net, tmp_path, steps=4, epochs=1)
    trainer.path_cost, trainer.rank_weight = (lambda a: float(depth(a))), weight
    trainer.global_step = 2  # half way: the ramp's weight is weight * sin(0.4 pi)
    return net, trainer


def _grads(net):
    return {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


def test_pairwise_rank_loss_adds_the_hinge_of_the_costlier_paths_loss_to_one_backward(tmp_path):
    net, trainer = _ranked_trainer(tmp_path, weight=2.0)
    space = net.space
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, *space.input_shape, generator=g), torch.randint(0, 10, (8,), generator=g)
    shallow, deep = space.parse_arch("11000000"), space.parse_arch("12121212")
    crit = trainer.criterion
    with torch.no_grad():
        worse_is_deep = crit(net(x, deep), y) > crit(net(x, shallow), y)
    if not worse_is_deep:  # the hinge must be active: the costlier path has the higher loss
        trainer.path_cost = lambda a: -float(depth(a))
    costly, cheap = (deep, shallow) if worse_is_deep else (shallow, deep)

    losses, _, hinge = trainer._ranked_backward(0, 0, x, y, [shallow, deep])
    ranked = _grads(net)
    net.zero_grad(set_to_none=True)
    l_costly, l_cheap = crit(net(x, costly), y), crit(net(x, cheap), y)
    weight = 2.0 * torch.sin(torch.tensor(0.4 * torch.pi))
    (l_costly + l_cheap + weight * torch.relu(l_costly - l_cheap.detach())).backward()
    expected = _grads(net)
    net.zero_grad(set_to_none=True)
    (crit(net(x, costly), y) + crit(net(x, cheap), y)).backward()
    plain = _grads(net)

    l_costly, l_cheap = float(l_costly.detach()), float(l_cheap.detach())
    assert hinge == pytest.approx(l_costly - l_cheap, rel=1e-5) and hinge > 0
    assert sorted(losses) == pytest.approx(sorted([l_costly, l_cheap]), rel=1e-5)
    assert ranked.keys() == expected.keys()
    assert all(torch.allclose(ranked[n], expected[n], atol=1e-6) for n in ranked)
    assert any(not torch.allclose(ranked[n], plain[n], atol=1e-6) for n in ranked)  # the hinge moved them


def test_pairwise_rank_loss_needs_two_paths_and_no_distillation(tmp_path):
    from supernet.jobs.train import train_supernet
    from tests.conftest import tiny_overrides

    one = load_config(None, tiny_overrides(train__pairwise_rank_weight=2.0))
    with pytest.raises(ConfigError, match="two or more paths"):
        train_supernet(one, tmp_path / "one")
    assert not (tmp_path / "one").exists()  # refused before the run directory is made
    distilled = load_config(
        None, tiny_overrides(train__pairwise_rank_weight=2.0, train__sampler="sandwich", train__distill="true")
    )
    with pytest.raises(ConfigError, match="train.distill"):
        train_supernet(distilled, tmp_path / "distilled")
    assert not (tmp_path / "distilled" / "checkpoints").exists()
    with pytest.raises(ConfigError, match="pairwise_rank_weight"):
        load_config(None, ["train.pairwise_rank_weight=-1"])


def test_pairwise_rank_loss_trains_and_logs_its_hinge(tmp_path):
    from supernet.jobs.train import train_supernet
    from tests.conftest import tiny_overrides

    cfg = load_config(None, [*tiny_overrides(train__pairwise_rank_weight=2.0), "train.sampler_options={paths: 2}"])
    train_supernet(cfg, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r["type"] == "step"]
    assert steps and all(len(r["paths"]) == 2 and r["rank_hinge"] >= 0 for r in steps)


def test_a_checkpoint_from_before_pairwise_rank_weight_keeps_its_config_hash():
    """The field is left out of the hash at its default, so runs trained before it existed still resume."""
    import hashlib

    cfg = load_config(None, [])
    blob = {s: asdict(getattr(cfg, s)) for s in ("data", "train")}
    from supernet.runs.build import EXECUTION_FIELDS

    for section in blob.values():
        for name in EXECUTION_FIELDS:
            section.pop(name, None)
    blob["train"].pop("pairwise_rank_weight")  # as the config was before the field existed
    before = hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert config_hash(cfg, ("data", "train")) == before
    ranked = load_config(None, ["train.pairwise_rank_weight=2"])
    assert config_hash(ranked, ("data", "train")) != before


def test_fit_takes_the_pairwise_rank_weight():
    from supernet import api

    with pytest.raises(ConfigError, match="pairwise_rank_weight"):
        api.fit(None, None, pairwise_rank_weight=-1.0)  # checked before anything is built


def test_fit_until_a_step_then_on_trains_exactly_as_one_fit(tmp_path):
    """`Trainer.fit(until_step)` (the few-shot inheritance measurement's first steps) stops mid-epoch without
    a summary, and a later `fit` continues the same schedule, paths and data as an uninterrupted one."""
    from train_helpers import tiny_space

    def run(folder, cut):
        torch.manual_seed(0)
        net = Supernet(tiny_space(), SupernetOptions())
        trainer = make_trainer(net, tmp_path / folder, steps=3, epochs=2)
        if cut is not None:
            assert trainer.fit(until_step=cut) == [] and trainer.global_step == cut
        summaries = trainer.fit()
        rows = [json.loads(x) for x in (tmp_path / folder / "metrics.jsonl").read_text().splitlines()]
        return summaries, [(r["global_step"], r["lr"], r["loss"]) for r in rows if r["type"] == "step"], net

    whole, whole_rows, whole_net = run("whole", None)
    cut, cut_rows, cut_net = run("cut", 2)
    assert [r[:2] for r in cut_rows] == [r[:2] for r in whole_rows] and len(whole_rows) == 6
    assert [r[2] for r in cut_rows] == pytest.approx([r[2] for r in whole_rows], rel=1e-5)
    assert len(whole) == 2 and len(cut) == 2 and cut[0]["end_step"] == 3
    for (name, a), b in zip(whole_net.state_dict().items(), cut_net.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name
