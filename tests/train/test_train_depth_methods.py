"""Issue 21's training methods against the short-training depth bias: canonical identities, depth-balanced
and sandwich sampling, in-place distillation, linear decay and warm-up in epochs."""

import collections
import random

import pytest
import torch
from train_helpers import make_trainer, tiny_space, trained_like

from supernet.config.schema import load_config
from supernet.core.errors import ConfigError
from supernet.model.export import export_model
from supernet.model.supernet import Supernet, SupernetOptions
from supernet.space import Arch, create_space
from supernet.train.loop import scheduled_lr, soft_cross_entropy, warmup_steps
from supernet.train.sampler import DepthBalancedSampler, SandwichSampler, create_sampler

MACRO = dict(width=0.125, resolution=16, head_channels=32)


def macro():
    return create_space("nas-bench-macro", **MACRO)


def test_canonical_form_moves_each_stages_identities_to_its_end():
    space = macro()  # stages of 2, 3, 3 layers
    assert [list(s) for s in space.stages()] == [[0, 1], [2, 3, 4], [5, 6, 7]]
    arch = space.parse_arch("10201201")
    assert space.canonical(arch) == space.parse_arch("10210210")
    assert space.canonical(space.parse_arch("01022100")) == space.parse_arch("01022100")
    assert space.canonical(space.canonical(arch)) == space.canonical(arch)


def test_canonical_supernet_runs_every_spelling_on_one_weight_path():
    space = macro()
    x = torch.randn(2, *space.input_shape)
    plain = trained_like(Supernet(space, SupernetOptions()), 1)
    net = trained_like(Supernet(space, SupernetOptions(canonical=True)), 1)
    net.load_state_dict(plain.state_dict())
    spelling, form = space.parse_arch("10201201"), space.parse_arch("10210210")
    with torch.no_grad():
        assert torch.equal(net(x, spelling), net(x, form))
        assert torch.equal(net(x, form), plain(x, form))
        assert not torch.allclose(plain(x, spelling), plain(x, form))  # without it: other weights
        assert torch.allclose(export_model(net, spelling).eval()(x), net(x, spelling), atol=1e-5)
    assert list(net.path_modules(spelling)) == list(net.path_modules(form))


def test_canonical_needs_skip_identities_and_a_chain_space():
    with pytest.raises(ConfigError, match="identity=skip"):
        SupernetOptions(identity="els", canonical=True)
    from supernet.model.factory import build_supernet

    with pytest.raises(ConfigError, match="chain spaces"):
        build_supernet(create_space("nas-bench-201", preset="fashion-mnist"), SupernetOptions(canonical=True))


def test_depth_balanced_sampler_draws_every_depth_equally_often():
    space = macro()
    sampler = create_sampler("depth-balanced", space)
    assert isinstance(sampler, DepthBalancedSampler) and list(sampler.depths) == list(range(9))
    rng = random.Random(0)
    draws = [sampler.paths(rng)[0] for _ in range(9000)]
    depths = collections.Counter(sum(op != "id" for op in a) for a in draws)
    assert set(depths) == set(range(9)) and all(800 < n < 1200 for n in depths.values()), depths
    uniform = collections.Counter(sum(op != "id" for op in space.sample(rng)) for _ in range(9000))
    assert uniform[8] < 500  # the bias the sampler removes: 4% of uniform draws have 8 layers
    for layer in range(8):  # which layers: uniform, and the ops of a chosen layer too
        ops = collections.Counter(a[layer] for a in draws)
        assert abs(ops["e3k3"] - ops["e6k5"]) < 400


def test_depth_balanced_sampler_keeps_layers_without_an_identity():
    space = tiny_space(identity_in="same-shape")  # the shape-changing layers offer no identity
    sampler = DepthBalancedSampler(space)
    forced = [i for i, layer in enumerate(space.layers) if "id" not in layer.choices]
    assert forced and sampler.depths[0] == len(forced)
    rng = random.Random(1)
    for _ in range(200):
        arch = sampler.paths(rng)[0]
        assert space.contains(arch) and all(arch[i] != "id" for i in forced)


def test_sandwich_trains_the_largest_the_smallest_and_random_paths():
    space = macro()
    sampler = SandwichSampler(space, random_paths=3)
    assert sampler.largest == Arch(("e6k5",) * 8) and sampler.smallest == Arch(("id",) * 8)
    paths = sampler.paths(random.Random(0))
    assert len(paths) == 5 and paths[:2] == [sampler.largest, sampler.smallest]
    assert len(set(paths[2:])) == 3
    with pytest.raises(ConfigError, match="random_paths"):
        create_sampler("sandwich", space, random_paths=-1)


def test_sandwich_largest_is_the_widest_width_choice():
    space = create_space("spos-shufflenet", preset="fashion-mnist", channels="search", width=0.25)
    sampler = SandwichSampler(space, random_paths=0)
    widths = {float(op.rpartition("@")[2]) for op in sampler.largest.ops if "@" in op}
    assert widths == {max(float(op.rpartition("@")[2]) for op in space.layers[0].choices if "@" in op)}


def test_distilled_paths_learn_the_first_paths_soft_labels(tmp_path):
    space = tiny_space()
    logits = torch.randn(4, 10)
    teacher = torch.randn(4, 10).softmax(1)
    expected = torch.nn.functional.cross_entropy(logits, teacher)
    assert torch.allclose(soft_cross_entropy(logits, teacher), expected)
    rows = {}
    for distill in (False, True):
        net = Supernet(space, SupernetOptions())
        torch.manual_seed(0)
        net.load_state_dict(Supernet(space, SupernetOptions()).state_dict())
        trainer = make_trainer(net, tmp_path / str(distill), sampler=SandwichSampler(space, random_paths=1), steps=1)
        trainer.distill = distill
        trainer.fit()
        losses = [
            float(line.split('"loss": ')[1].split(",")[0])
            for line in (tmp_path / str(distill) / "metrics.jsonl").read_text().splitlines()
            if '"type": "step"' in line
        ]
        rows[distill] = losses
    assert rows[True] != rows[False]  # the students' loss is against the teacher, not the labels


def test_distill_needs_the_sandwich_sampler(tmp_path):
    from supernet.jobs.train import train_supernet
    from tests.conftest import tiny_overrides

    cfg = load_config(None, tiny_overrides(train__distill="true"))
    with pytest.raises(ConfigError, match="sampler=sandwich"):
        train_supernet(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_linear_decay_and_warmup_in_epochs():
    assert scheduled_lr("linear", 0.1, 0, 100) == pytest.approx(0.1)
    assert scheduled_lr("linear", 0.1, 50, 100) == pytest.approx(0.05)
    assert scheduled_lr("linear", 0.1, 100, 100) == 0.0
    assert scheduled_lr("cosine", 0.1, 50, 100) == pytest.approx(0.05)
    assert scheduled_lr("cosine", 0.1, 25, 100) == pytest.approx(0.05 * (1 + 2**-0.5))
    assert scheduled_lr("linear", 0.1, 9, 110, warmup=10) == pytest.approx(0.1)
    assert scheduled_lr("linear", 0.1, 60, 110, warmup=10) == pytest.approx(0.05)
    cfg = load_config(None, ["train.warmup_epochs=0.5", "train.schedule=linear", "standalone.schedule=linear"])
    assert warmup_steps(cfg.train, 359) == 180 and cfg.standalone.schedule == "linear"
    assert warmup_steps(load_config(None, ["train.warmup_steps=7"]).train, 359) == 7


def test_trainer_follows_the_linear_schedule(tmp_path):
    net = Supernet(tiny_space(), SupernetOptions())
    trainer = make_trainer(net, tmp_path, steps=4, epochs=2)
    trainer.cfg.schedule, trainer.cfg.warmup_epochs = "linear", 0.5
    trainer.warmup = warmup_steps(trainer.cfg, trainer.steps_per_epoch)
    trainer.fit()
    lrs = [
        float(line.split('"lr": ')[1].split(",")[0])
        for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
        if '"type": "step"' in line
    ]
    assert lrs == pytest.approx([0.025, 0.05] + [0.05 * (6 - k) / 6 for k in range(6)])  # warm-up, then linear


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.schedule=step", "train.schedule must be one of cosine, linear"),
        ("standalone.schedule=exp", "standalone.schedule must be one of"),
        ("train.warmup_epochs=-1", "train.warmup_epochs"),
        (
            "train.sandwich_random=2",
            "is now the strategy's or sampler's own option: train.sampler_options.random_paths",
        ),
        ("train.sampler_options.random_paths=-1", "unknown config field 'train.sampler_options.random_paths'"),
    ],
)
def test_bad_schedule_options_are_refused_when_the_config_is_read(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])
    with pytest.raises(ConfigError, match="not both"):
        load_config(None, ["train.warmup_steps=3", "train.warmup_epochs=1"])


def _quant():
    return create_space("resnet18-quant", preset="fashion-mnist", width=0.125)


def test_sandwich_corners_take_the_maximum_in_every_dimension_not_the_first_of_equal_macs():
    """Issue 28.10: every bit width of a width has the same MACs, so by MACs (ties to the first choice)
    the largest path was w1a2@1.5 in every layer; BigNAS/OFA take the maximum in bits and width too."""
    space = _quant()
    sampler = create_sampler("sandwich", space, random_paths=0)
    assert sampler.largest == Arch(("w4a4@1.5",) * space.num_layers)
    assert sampler.smallest == Arch(("w1a2@0.5",) * space.num_layers)
    from supernet.cost import CostTable

    table = CostTable.build(space)
    assert table.value(sampler.largest, "bitops") == max(table.range("bitops"))
    assert table.value(sampler.smallest, "bitops") == min(table.range("bitops"))


def test_sandwich_corners_fall_back_to_the_cost_only_between_incomparable_candidates():
    from supernet.train.corners import sandwich_corners

    full = tiny_space()
    space = full.restrict([["e3k7", "e6k5", "id"]] + [list(layer.choices) for layer in full.layers[1:]])
    rest = [[0.0] * len(layer.choices) for layer in space.layers[1:]]  # all equal: the dimensions alone decide
    largest, smallest = sandwich_corners(space, "skip", [[1.0, 2.0, 0.0], *rest])
    assert (largest[0], smallest[0]) == ("e6k5", "id")  # e3k7 and e6k5 do not compare: the cost decides
    assert all(op == "e6k7" for op in largest[1:]) and all(op == "id" for op in smallest[1:])
    largest, smallest = sandwich_corners(space, "skip", [[2.0, 1.0, 5.0], *rest])
    assert (largest[0], smallest[0]) == ("e3k7", "id")  # an identity is the smallest whatever it costs


def test_sandwich_run_on_resnet18_quant_distils_from_the_highest_precision_widest_path(tmp_path, monkeypatch):
    """Issue 28 done-when: the teacher of in-place distillation is the w4a4@1.5 path, not w1a2@1.5."""
    import supernet.train.loop as loop

    space = _quant()
    net = Supernet(space, SupernetOptions())
    sampler = create_sampler("sandwich", space, random_paths=1)
    seen, teachers = [], []

    def forward(x, arch):
        logits = net(x, arch)
        seen.append((arch, logits.detach().float().softmax(1)))
        return logits

    def spy(logits, teacher):
        teachers.append(teacher)
        return soft_cross_entropy(logits, teacher)

    monkeypatch.setattr(loop, "soft_cross_entropy", spy)
    trainer = make_trainer(net, tmp_path, sampler=sampler, steps=1, epochs=1, forward=forward)
    trainer.distill = True
    trainer.fit()
    widest_w4a4 = Arch(("w4a4@1.5",) * space.num_layers)
    assert [arch for arch, _ in seen[:2]] == [widest_w4a4, Arch(("w1a2@0.5",) * space.num_layers)]
    assert len(seen) == 3 and len(teachers) == 2
    assert all(torch.allclose(t, seen[0][1]) for t in teachers)  # both students learn the w4a4@1.5 path's labels
