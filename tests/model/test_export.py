import json
import random
import re

import pytest
import torch

from supernet.cost import CostTable
from supernet.cost.counter import count_macs, count_params
from supernet.model.bn import recalibrate_path
from supernet.model.export import export_model, standalone_config
from supernet.model.standalone import StandaloneNet
from supernet.model.supernet import Supernet, SupernetOptions
from supernet.ops.standalone import let_standalone_config
from supernet.space import create_space
from tests.conftest import needs_fashion, randomize_batchnorm, run_cli, tiny_overrides


@pytest.mark.parametrize("bn_affine", [False, True])
def test_skip_export_matches_supernet_path(tiny_space, bn_affine):
    net = randomize_batchnorm(Supernet(tiny_space, SupernetOptions("skip", bn_affine)))
    x = torch.randn(4, *tiny_space.input_shape)
    rng = random.Random(1)
    archs = [tiny_space.sample(rng) for _ in range(5)] + [
        tiny_space.parse_arch(",".join("id" if "id" in layer.choices else "e6k7" for layer in tiny_space.layers))
    ]
    for arch in archs:
        model = export_model(net, arch).eval()
        torch.testing.assert_close(model(x), net(x, arch), rtol=1e-5, atol=1e-5)


def test_els_export_drop_els_is_the_papers_rule(tiny_space):
    net = randomize_batchnorm(Supernet(tiny_space, SupernetOptions("els")))
    x = torch.randn(4, *tiny_space.input_shape)
    no_id = tiny_space.parse_arch(",".join("e3k5" for _ in tiny_space.layers))
    torch.testing.assert_close(export_model(net, no_id).eval()(x), net(x, no_id), rtol=1e-5, atol=1e-5)
    with_id = tiny_space.parse_arch(",".join("id" if "id" in l.choices else "e3k5" for l in tiny_space.layers))
    model = export_model(net, with_id, drop_els=True)
    assert not any(
        isinstance(m, torch.nn.Conv2d)
        and m.kernel_size == (1, 1)
        and m.bias is None
        and m.in_channels == m.out_channels
        and m.groups == 1
        and m.stride == (1, 1)
        and type(model[0]) is torch.nn.Conv2d
        for m in model
    )
    assert len(model) < len(export_model(net, no_id))


def _perturb_els(net, seed=0):
    """Trained-like ELS convs, far from their identity initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if ".id." in f".{name}" and p.dim() == 4 and p.shape[-2:] == (1, 1):
                p.add_(torch.randn(p.shape, generator=g))
    return net


def _export_space():
    return create_space(
        "scarlet-s1",
        preset="fashion-mnist",
        width=0.25,
        head_channels=32,
        identity_in="all",
        layers_per_stage=(1, 2, 1, 2, 1, 1),
        stem_stride=2,
    )


@pytest.mark.parametrize(
    "options",
    [
        SupernetOptions("skip"),
        SupernetOptions("els"),
        SupernetOptions("els", interchoice="bias"),
        SupernetOptions("els", interchoice="bias", interchoice_bias_at="pre_act"),
    ],
    ids=["skip", "els", "els-bias-input", "els-bias-pre_act"],
)
def test_export_keeps_the_supernet_paths_function_with_trained_els(options):
    from tests.train.train_helpers import trained_like

    space = _export_space()
    net = _perturb_els(trained_like(Supernet(space, options)))
    x = torch.randn(4, *space.input_shape)
    rng = random.Random(3)
    ids = [i for i, layer in enumerate(space.layers) if layer.keeps_shape]
    foldable = list(space.sample(rng).ops)  # an id before a stage's first (non-residual) block: folds exactly
    for i in ids:
        if i + 1 < len(space.layers) and not space.layers[i + 1].keeps_shape:
            foldable[i], foldable[i + 1] = "id", "e6k5"
    kept = ["id" if space.layers[i].keeps_shape else "e3k3" for i in range(len(space.layers))]  # residual next
    archs = [space.parse_arch(",".join(foldable)), space.parse_arch(",".join(kept))]
    archs += [space.sample(rng) for _ in range(3)]
    folded_any = kept_any = False
    for arch in archs:
        recalibrate_path(net, arch, [torch.randn(64, *space.input_shape)])  # BN stats that keep the signal alive
        model = export_model(net, arch).eval()
        assert net(x, arch).std(0).mean() > 1e-2  # the outputs depend on the input
        torch.testing.assert_close(model(x), net(x, arch), rtol=1e-4, atol=1e-4)
        rebuilt = StandaloneNet(json.loads(json.dumps(model.config)))
        rebuilt.load_state_dict(model.state_dict())
        torch.testing.assert_close(rebuilt.eval()(x), model(x))
        folded_any |= bool(model.config.get("els_folded"))
        kept_any |= bool(model.config.get("els_kept"))
    els = options.identity == "els"
    assert kept_any == els
    # an input bias vector sits between an ELS and the next block (an explicit bias block): no fold there
    assert folded_any == (els and not (options.interchoice == "bias" and options.interchoice_bias_at == "input"))
    if options.identity == "els":
        recalibrate_path(net, archs[1], [torch.randn(64, *space.input_shape)])
        dropped = export_model(net, archs[1], drop_els=True).eval()
        assert (dropped(x) - net(x, archs[1])).abs().max() > 1e-2  # the paper's rule: a different function


@pytest.mark.parametrize("identity", ["skip", "els"])
def test_exported_costs_equal_cost_model(identity):
    space = create_space("scarlet-s1", preset="fashion-mnist", identity_in="all", layers_per_stage=(1, 2, 1, 1, 2, 1))
    table = CostTable.build(space, "let" if identity == "els" else identity)
    net = Supernet(space, SupernetOptions(identity))
    rng = random.Random(0)
    downsampling_id = space.parse_arch(",".join("id" if i in (0, 1, 3) else "e3k3" for i in range(space.num_layers)))
    assert not space.layers[1].keeps_shape and space.layers[1].stride == 2
    for arch in [downsampling_id, *(space.sample(rng) for _ in range(4))]:
        model = export_model(net, arch, drop_els=True)  # the cost model prices the paper's stand-alone model
        cost = table.query(arch)
        assert count_macs(model, space.input_shape) == cost.macs
        assert count_params(model) == cost.params


def test_config_rebuilds_model_from_json_alone(tiny_space):
    arch = tiny_space.sample(random.Random(2))
    config = json.loads(json.dumps(standalone_config(tiny_space, arch)))
    model = StandaloneNet(config)
    assert model(model.example_input(2)).shape == (2, tiny_space.num_classes)
    with pytest.raises(ValueError, match="not a stand-alone config"):
        StandaloneNet({"format": "other"})


def _bare_convs(model):
    """Top-level bare convs: what an ELS exports as."""
    return [m for m in model if type(m) is torch.nn.Conv2d]


def test_drop_els_builds_the_let_papers_model_for_a_downsampling_identity(tmp_path):
    from supernet.jobs.export import export_path, load_exported

    space = _export_space()
    net = _perturb_els(randomize_batchnorm(Supernet(space, SupernetOptions("els"))))
    stride2 = [i for i, layer in enumerate(space.layers) if layer.stride == 2]
    widen = next(i for i, layer in enumerate(space.layers) if layer.in_channels != layer.out_channels)
    ops = ["id" if i in (*stride2[:2], widen) else "e3k5" for i in range(space.num_layers)]
    arch = space.parse_arch(",".join(ops))
    assert _bare_convs(export_model(net, arch))  # the exact export keeps the strided ELS convs
    out = export_path(net, {}, arch, tmp_path / "let", drop_els=True)
    model = load_exported(tmp_path / "let").eval()
    blocks = model.config["blocks"]
    assert not _bare_convs(model) and not any(b["type"] == "els" for b in blocks)
    assert out["els_dropped"] == ops.count("id") and not out["same_function_as_supernet_path"]
    first = len(space.stem)
    assert [blocks[first + i]["type"] for i in stride2[:2]] == ["subsample", "subsample"]
    nxt = next(i for i in range(stride2[1] + 1, space.num_layers) if ops[i] != "id")
    assert blocks[first + nxt]["in"] == space.layers[0].in_channels  # every layer before it was dropped
    x = torch.randn(2, *space.input_shape)
    assert model(x).shape == (2, space.num_classes)
    cost = CostTable.build(space, "let").query(arch)
    assert (count_macs(model, space.input_shape), count_params(model)) == (cost.macs, cost.params)
    assert cost.macs < CostTable.build(space, "els").query(arch).macs  # no ELS convs left to pay for


def test_let_costs_every_arch_exactly_and_its_range_is_tight():
    import itertools

    space = create_space("scarlet-s1", preset="fashion-mnist", width=0.25, head_channels=32, layers_per_stage=(1,) * 6)
    table = CostTable.build(space, "let")
    archs = [space.from_indices(ix) for ix in itertools.product(*[range(len(la.choices)) for la in space.layers])]
    values = sorted(table.query(a).macs for a in archs)
    assert table.range("macs") == (values[0], values[-1])
    rng = random.Random(0)
    for arch in rng.sample(archs, 6):
        model = StandaloneNet(let_standalone_config(space, arch))
        assert count_macs(model, space.input_shape) == table.query(arch).macs


def test_all_identity_let_model_is_the_els_papers_23m_flops_model():
    """SCARLET (ELS paper) Table 8: the all-identity model, "only the stem and the tail", has 23M FLOPs:
    the tail runs at 7x7, so a downsampling identity keeps its downsampling."""
    space = create_space("scarlet-s1")
    arch = space.parse_arch(",".join(["id"] * space.num_layers))
    macs = count_macs(StandaloneNet(let_standalone_config(space, arch)), space.input_shape)
    assert round(macs / 1e6) == 23


def test_retrain_builds_the_let_model_for_els_spaces_unless_told_otherwise(tiny_space):
    from supernet.core.errors import ConfigError
    from supernet.ops.standalone import retrain_config

    arch = tiny_space.parse_arch(",".join("id" if la.stride == 2 else "e3k3" for la in tiny_space.layers))
    let = retrain_config(tiny_space, arch, "els")
    assert not any(b["type"] == "els" for b in let["blocks"]) and let.get("let")
    assert any(b["type"] == "els" for b in retrain_config(tiny_space, arch, "els", let=False)["blocks"])
    assert retrain_config(tiny_space, arch, "skip") == standalone_config(tiny_space, arch, "skip")
    with pytest.raises(ConfigError, match="LET model"):
        retrain_config(tiny_space, arch, "skip", let=True)


@needs_fashion
def test_retrain_cli_trains_the_let_model_by_default_and_the_strided_els_one_on_request(tmp_path):
    from supernet.train.checkpoint import load_checkpoint

    space = [
        *("--space", "scarlet-s1", "--preset", "fashion-mnist", "--identity", "els"),
        *("--option", "width=0.25", "--option", "head_channels=32", "--option", "stem_stride=2"),
        *("--option", "layers_per_stage=[1,2,1,2,1,1]", "--arch", "id,e3k3,e3k3,id,e3k3,e3k3,id,e3k3"),
    ]
    sets = tiny_overrides(data__train_limit=128, data__val_size=64, standalone__epochs=1)
    sets = [a for s in sets if not s.startswith("space.") for a in ("--set", s)]
    for flag, model in (([], "let"), (["--strided-els"], "els")):
        run = tmp_path / model
        run_cli("retrain", *space, "--run-dir", str(run), *sets, *flag, code=0)
        checkpoint = load_checkpoint(run / "checkpoints" / "last.pt")
        assert checkpoint.meta["model"] == model
        weights = checkpoint.state["model"]
        bare = [k for k, v in weights.items() if re.fullmatch(r"\d+\.weight", k) and v.dim() == 4]  # ELS convs
        assert bool(bare) == (model == "els")
