"""Inter-choice dependent weights (section 3.3): bias tables, split copies, export, resume across the split."""

import warnings

import pytest
import torch
from train_helpers import make_trainer, rand_arch, split_and_perturbed, tiny_space, trained_like

from supernet.core.errors import ConfigError
from supernet.cost import CostTable, count_macs, count_params
from supernet.model.export import export_model
from supernet.model.interchoice import START, layer_contexts
from supernet.model.supernet import Supernet, SupernetOptions
from supernet.space import Arch
from supernet.train.checkpoint import load_checkpoint
from supernet.train.hooks import SplitHook
from supernet.train.loop import TrainHook
from tests.conftest import needs_fashion, tiny_overrides

pytestmark = pytest.mark.filterwarnings("ignore:supernet.interchoice=bias at the layer input is inert")


def _batch(space, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *space.input_shape, generator=g), torch.randint(0, space.num_classes, (n,), generator=g)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_bias_tables_hold_one_vector_per_context(depth):
    space = tiny_space()
    net = Supernet(space, SupernetOptions(interchoice="bias", interchoice_depth=depth))
    for i, layer in enumerate(space.layers):
        table = net.biases.tables[i]
        prev = space.layers[max(0, i - depth) : i]
        expected = len(layer.choices)
        for p in prev:
            expected *= len(p.choices)
        assert len(table) == expected == len(layer_contexts(space, i, depth))
        assert all(v.shape == (layer.in_channels,) and not v.any() for v in table.values())  # zero init
        if i < depth:
            assert all(k.startswith(START + "+") for k in table)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_bias_is_selected_by_previous_and_current_choice_and_only_it_trains(depth):
    space = tiny_space(identity_in="same-shape")  # the test counts contexts of the narrower variant
    # pre_act: the input placement gets only rounding-noise gradients in this space (test below);
    # zero_init_residual off: a zero-initialised residual branch passes no gradient to its inside yet.
    net = Supernet(
        space,
        SupernetOptions(
            interchoice="bias", interchoice_depth=depth, interchoice_bias_at="pre_act", zero_init_residual=False
        ),
    )
    arch = Arch(tuple("e3k3" if op == "id" else op for op in rand_arch(space, depth).ops))
    layer = 5
    # Changing the current choice or any of the D previous ones selects another vector; an older one does not.
    for j in range(layer - depth - 1, layer + 1):
        other = next(op for op in space.layers[j].choices if op not in (arch[j], "id"))
        changed = net.biases.vector(layer, arch.replace(j, other).ops)
        same = net.biases.vector(layer, arch.ops)
        assert (changed is same) == (j < layer - depth), j
    x, y = _batch(space)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    for step_arch in (Arch(tuple("e6k5" if op == "id" else op for op in rand_arch(space, 10).ops)), arch):
        # momentum on some other vectors first
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x, step_arch), y).backward()
        opt.step()
    before = {k: v.clone() for k, v in net.biases.state_dict().items()}
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(net(x, arch), y).backward()
    used = {net.biases.key(i, arch.ops) for i in range(space.num_layers)}
    for i, table in enumerate(net.biases.tables):
        for key, v in table.items():
            is_used = key == net.biases.key(i, arch.ops)
            assert (v.grad is not None) == is_used, (i, key)
            assert not is_used or v.grad.abs().max() > 1e-4
    opt.step()
    after = net.biases.state_dict()
    used_names = {f"tables.{i}.{net.biases.key(i, arch.ops)}" for i in range(space.num_layers)}
    for name in before:  # weight decay and momentum moved nothing off the path
        assert (not torch.equal(before[name], after[name])) == (name in used_names), name
    assert len(used) == space.num_layers


def test_bias_size_limit_and_option_checks():
    with pytest.raises(ConfigError, match="interchoice must be"):
        SupernetOptions(interchoice="attention")
    with pytest.raises(ConfigError, match="depth must be 1"):
        SupernetOptions(interchoice="split", interchoice_depth=2)
    with pytest.raises(ConfigError, match="bias vectors"):
        Supernet(tiny_space(), SupernetOptions(interchoice="bias", interchoice_depth=6))


def test_space_defined_previous_layers():
    space = tiny_space()
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Cell(type(space)):
        def previous(self, layer):  # e.g. a cell: every layer depends on layer 0 only
            return (0,) if layer else ()

    cell = Cell(**{f.name: getattr(space, f.name) for f in dataclasses.fields(space)})
    net = Supernet(cell, SupernetOptions(interchoice="bias", interchoice_depth=2))
    arch = rand_arch(cell, 0)
    assert net.biases.key(4, arch.ops) == f"{START}+{arch[0]}+{arch[4]}"
    assert net.biases.vector(4, arch.ops) is net.biases.vector(
        4, arch.replace(3, "e6k7" if arch[3] != "e6k7" else "e3k3").ops
    )


def _assert_export_matches(net, arch, x):
    model = export_model(net, arch).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x, arch), rtol=1e-5, atol=1e-5)
    return model


def test_bias_export_folds_into_batchnorm_and_keeps_the_cost_model():
    space = tiny_space()
    net = trained_like(Supernet(space, SupernetOptions(interchoice="bias", interchoice_depth=2)))
    table = CostTable.build(space, "skip")
    x = _batch(space)[0]
    archs = [rand_arch(space, s) for s in range(4)]
    archs.append(Arch(tuple("id" if "id" in l.choices else "e6k7" for l in space.layers)))  # folds across skips
    for arch in archs:
        model = _assert_export_matches(net, arch, x)
        assert all(b["type"] != "bias" for b in model.config["blocks"])
        cost = table.query(arch)
        assert (count_macs(model, space.input_shape), count_params(model)) == (cost.macs, cost.params)
        plain = export_model(trained_like(Supernet(space)), arch)
        assert plain.config == model.config


def test_bias_export_inserts_a_bias_block_after_a_bare_els_conv():
    space = tiny_space(identity_in="all")
    net = trained_like(Supernet(space, SupernetOptions("els", interchoice="bias")))
    changing = [i for i, l in enumerate(space.layers) if not l.keeps_shape and i + 1 < space.num_layers]
    arch = Arch(tuple("id" if i in changing else "e3k5" for i in range(space.num_layers)))
    model = _assert_export_matches(net, arch, _batch(space)[0])
    inserted = [b for b in model.config["blocks"] if b["type"] == "bias"]
    assert len(inserted) == len(changing)
    table = CostTable.build(space, "els")
    cost = table.query(arch)
    assert count_macs(model, space.input_shape) == cost.macs  # a bias block has no MACs ...
    assert count_params(model) == cost.params + sum(b["channels"] for b in inserted)  # ... but C params
    from supernet.model.standalone import StandaloneNet

    rebuilt = StandaloneNet(model.config)  # the config alone rebuilds it
    rebuilt.load_state_dict(model.state_dict())


def _bias_grads(net, arch, x, y):
    net.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(net(x, arch), y).backward()
    return [net.biases.get(i, arch.ops) for i in range(len(arch))]


def test_input_bias_is_inert_in_mobilenet_chains_and_pre_act_bias_is_not():
    """Train-mode BN removes a per-channel constant after a 1x1 conv: the paper's input placement
    gets no gradient (up to rounding) in IBN chains; the pre-activation placement does."""
    space = tiny_space()
    x, y = _batch(space, n=8)
    arch = Arch(tuple("e3k3" for _ in space.layers))
    inert = Supernet(space, SupernetOptions(interchoice="bias"))
    with torch.no_grad():
        before = inert(x, arch)
        for p in inert.biases.parameters():
            p.uniform_(-1, 1)
        torch.testing.assert_close(inert(x, arch), before, rtol=1e-4, atol=1e-4)  # the loss ignores the vectors
    grads = [v.grad.abs().max().item() for v in _bias_grads(inert, arch, x, y)]
    assert max(grads) < 1e-5
    active = Supernet(
        space, SupernetOptions(interchoice="bias", interchoice_bias_at="pre_act", zero_init_residual=False)
    )  # zero-init branches pass no gradient yet
    vectors = _bias_grads(active, arch, x, y)
    assert all(v is not None and v.grad.abs().max() > 1e-3 for v in vectors)
    assert [v.numel() for v in vectors] == [l.in_channels * 3 for l in space.layers]  # e3: the expanded width


def test_inert_input_bias_is_warned_about_where_it_is_inert_only():
    with pytest.warns(UserWarning, match="interchoice_bias_at=pre_act"):
        Supernet(tiny_space(), SupernetOptions(interchoice="bias"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Supernet(tiny_space(), SupernetOptions(interchoice="bias", interchoice_bias_at="pre_act"))
        from supernet.space import create_space

        shufflenet = create_space("spos-shufflenet", preset="fashion-mnist")  # 3x3 depthwise first: not inert
        Supernet(shufflenet, SupernetOptions(interchoice="bias"))


def test_pre_act_bias_skips_identities_and_exports_exactly():
    space = tiny_space(identity_in="all")
    for identity in ("skip", "els"):
        net = trained_like(
            Supernet(
                space, SupernetOptions(identity, interchoice="bias", interchoice_bias_at="pre_act", interchoice_depth=2)
            )
        )
        assert all(not any(k.endswith("+id") for k in table) for table in net.biases.tables)
        table = CostTable.build(space, identity)
        archs = [rand_arch(space, s) for s in range(4)] + [Arch(("id",) + tuple("e6k5" for _ in space.layers[1:]))]
        for arch in archs:
            biases = net.path_biases(arch)
            assert [b is None for b in biases] == [op == "id" for op in arch.ops]
            model = _assert_export_matches(net, arch, _batch(space)[0])
            assert all(b["type"] != "bias" for b in model.config["blocks"])  # folded into BN: the plain model
            if identity == "skip":
                cost = table.query(arch)
                assert (count_macs(model, space.input_shape), count_params(model)) == (cost.macs, cost.params)


def test_pre_act_bias_option_checks():
    with pytest.raises(ConfigError, match="interchoice_bias_at must be one of"):
        SupernetOptions(interchoice="bias", interchoice_bias_at="output")
    from supernet.model.cell import CellSupernet
    from supernet.space import create_space

    with pytest.raises(ConfigError, match="interchoice_bias_at=input"):
        CellSupernet(
            create_space("nas-bench-201", preset="fashion-mnist"),
            SupernetOptions(interchoice="bias", interchoice_bias_at="pre_act"),
        )


def test_split_copies_are_independent_and_export_picks_the_right_copy():
    space = tiny_space()
    net = Supernet(space, SupernetOptions(interchoice="split"))
    original = {k: v.clone() for k, v in net.state_dict().items()}
    net.split_interchoice()
    layer = 3
    prev_choices = space.layers[layer - 1].choices
    assert set(net.choices[layer]["e3k3"]) == set(prev_choices) and set(net.choices[0]["e3k3"]) == {START}
    for name in prev_choices:  # every copy starts as the original
        copy_state = net.choices[layer]["e3k3"][name].state_dict()
        assert all(torch.equal(v, original[f"choices.{layer}.e3k3.{k}"]) for k, v in copy_state.items())
    arch = rand_arch(space, 1).replace(layer, "e3k3")
    x, y = _batch(space)
    torch.nn.functional.cross_entropy(net(x, arch), y).backward()
    for name, copy in net.choices[layer]["e3k3"].items():
        grads = [p.grad is not None for p in copy.parameters()]
        assert all(grads) if name == arch[layer - 1] else not any(grads), name
    net = split_and_perturbed(Supernet(space, SupernetOptions(interchoice="split")))
    x = _batch(space)[0]
    for s in range(4):
        arch = rand_arch(space, s).replace(layer, "e6k5")
        model = _assert_export_matches(net, arch, x)
        exported = _exported_block(net, model, layer)
        chosen = net.choices[layer]["e6k5"][arch[layer - 1]]
        assert all(torch.equal(a, b) for a, b in zip(exported.state_dict().values(), chosen.state_dict().values()))
        other = next(c for n, c in net.choices[layer]["e6k5"].items() if n != arch[layer - 1])
        assert not all(torch.equal(a, b) for a, b in zip(exported.state_dict().values(), other.state_dict().values()))


def _exported_block(net, model, layer):
    """The stand-alone module of searchable layer `layer` (identity blocks are dropped in `model`)."""
    blocks = model.config["blocks"]
    at = len(net.space.stem) + layer
    return model[sum(1 for b in blocks[:at] if b["type"] != "identity")]


def test_split_state_dict_loads_into_a_fresh_supernet():
    space = tiny_space()
    net = split_and_perturbed(Supernet(space, SupernetOptions(interchoice="split")))
    fresh = Supernet(space, SupernetOptions(interchoice="split")).eval()
    fresh.load_state_dict(net.state_dict())  # rebuilds the split structure first
    assert fresh.is_split
    x = _batch(space)[0]
    arch = rand_arch(space, 7)
    torch.testing.assert_close(fresh(x, arch), net(x, arch))


class _Stop(TrainHook):
    def __init__(self, epoch):
        self.epoch = epoch

    def epoch_start(self, trainer, epoch):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def _run_split(run_dir, stop=None, resume=False):
    torch.manual_seed(0)
    net = Supernet(tiny_space(), SupernetOptions(interchoice="split", split_epoch=1))
    hooks = [SplitHook(net, 1)] + ([_Stop(stop)] if stop is not None else [])
    trainer = make_trainer(net, run_dir, steps=2, epochs=3, hooks=hooks)
    if resume:
        assert trainer.resume()
    try:
        trainer.fit()
    except KeyboardInterrupt:
        pass
    return net, trainer


@pytest.fixture(scope="module")
def split_reference(tmp_path_factory):
    net, _ = _run_split(tmp_path_factory.mktemp("ref"))
    assert net.is_split
    return net


@pytest.mark.parametrize("stop_at", [1, 2])  # checkpoint before the split, and after it
def test_resume_across_the_split_continues_exactly(tmp_path, stop_at, split_reference):
    run = _run_split
    ref = split_reference
    _, stopped = run(tmp_path / "run", stop=stop_at)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt.meta["global_step"] == 2 * stop_at and ckpt.meta["interchoice_split"] == (stop_at >= 2)
    resumed, trainer = run(tmp_path / "run", resume=True)
    assert resumed.is_split and trainer.global_step == 6
    ref_state, state = ref.state_dict(), resumed.state_dict()
    assert ref_state.keys() == state.keys()
    for k in ref_state:
        torch.testing.assert_close(state[k], ref_state[k], rtol=0, atol=0, msg=k)
    # Each copy has its own optimizer state (at the split, a copy of the original's momentum).
    bufs = [st["momentum_buffer"] for st in trainer.optimizer.state.values() if "momentum_buffer" in st]
    assert len({b.data_ptr() for b in bufs}) == len(bufs) > 0


def test_split_defaults_to_half_of_the_training_and_an_explicit_epoch_wins():
    # the paper splits at 125, 175 or 200 of 250 epochs; the default is its earliest, half the training
    assert SupernetOptions(interchoice="split").split_epoch_for(250) == 125
    assert SupernetOptions(interchoice="split", split_at=0.8).split_epoch_for(250) == 200
    assert SupernetOptions(interchoice="split", split_epoch=3).split_epoch_for(250) == 3
    from supernet.config.schema import load_config

    with pytest.raises(ConfigError, match="supernet.split_at' must be >= 0 and < 1"):
        load_config(overrides=["supernet.split_at=1"])


@needs_fashion
def test_supernet_training_splits_at_half_of_its_epochs_by_default(tmp_path, monkeypatch):
    from supernet.config.schema import load_config
    from supernet.jobs.train import train_supernet

    given = []

    class Recording(SplitHook):
        def __init__(self, net, split_epoch):
            given.append(split_epoch)
            super().__init__(net, split_epoch)

    monkeypatch.setattr("supernet.train.hooks.SplitHook", Recording)
    overrides = tiny_overrides(
        train__epochs=4, train__max_steps_per_epoch=1, data__train_limit=256, supernet__interchoice="split"
    )
    train_supernet(load_config(None, overrides), tmp_path / "run")
    assert given == [2]  # 4 epochs: 2 shared, then 2 split
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt").meta["interchoice_split"]
