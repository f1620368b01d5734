"""Checks generated from the space registry: every registered space builds at a small size, its
supernet runs, and exported models match the supernet path and the cost table."""

import random

import pytest
import torch

from supernet.cost import CostTable
from supernet.cost.counter import count_macs, count_params
from supernet.model.export import export_model
from supernet.model.factory import build_supernet
from supernet.model.supernet import SupernetOptions
from supernet.ops.candidates import candidate_config
from supernet.space import create_space, list_spaces
from tests.conftest import randomize_batchnorm

SMALL = "fashion-mnist"
SPACES = [e.name for e in list_spaces()]


def _archs(space, n, seed=0):
    rng = random.Random(seed)
    return [space.sample(rng) for _ in range(n)] + [space.parse_arch(a) for a in sorted(space.named_archs)]


def test_registry_holds_the_zoo():
    assert {"fairnas", "scarlet-s1", "scarlet-s2", "proxyless", "spos-shufflenet", "nas-bench-macro"} <= set(SPACES)


@pytest.mark.parametrize("name", SPACES)
def test_defaults_and_small_preset_build(name):
    entry = next(e for e in list_spaces() if e.name == name)
    assert SMALL in entry.presets
    full, small = create_space(name), create_space(name, preset=SMALL)
    assert small.input_shape == (1, 28, 28) and small.num_classes == 10
    assert full.num_layers == small.num_layers
    assert dict(small.options) == {
        **dict(full.options),
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in entry.presets[SMALL].items()},
    }
    assert create_space(name, **small.options).fingerprint() == small.fingerprint()  # options rebuild it
    for text in full.named_archs.values():  # named archs are members of the space
        assert full.parse_arch(text) == full.parse_arch(full.parse_arch(text).to_string())


@pytest.mark.parametrize("name", SPACES)
def test_supernet_forward_gives_logits(name):
    space = create_space(name, preset=SMALL)
    net = build_supernet(space)
    x = torch.randn(2, *space.input_shape)
    for arch in _archs(space, 3)[:4]:
        assert net(x, arch).shape == (2, space.num_classes)


@pytest.mark.parametrize("name", SPACES)
def test_export_matches_supernet_path_and_cost_table(name):
    space = create_space(name, preset=SMALL)
    table = CostTable.build(space, "skip")
    net = randomize_batchnorm(build_supernet(space, SupernetOptions("skip")))
    x = torch.randn(3, *space.input_shape)
    for arch in _archs(space, 3, seed=1):
        model = export_model(net, arch).eval()
        cost = table.query(arch)
        assert count_macs(model, space.input_shape) == cost.macs, arch
        assert count_params(model) == cost.params, arch
        with torch.no_grad():
            torch.testing.assert_close(model(x), net(x, arch), rtol=1e-4, atol=1e-5)


def _has_identity_ops(name):
    """Whether the space has an op that `identity` (skip / els) changes."""
    return any(
        candidate_config(op, l, "els") != candidate_config(op, l, "skip")
        for l in create_space(name).layers
        for op in l.choices
    )


@pytest.mark.parametrize("name", [n for n in SPACES if _has_identity_ops(n)])
def test_els_export_costs_match_cost_table(name):
    space = create_space(name, preset=SMALL)
    chain = space.topology == "chain"  # cell spaces' identities are edges: no LET model to build there
    table = CostTable.build(space, "let" if chain else "els")  # chain: the LET paper's stand-alone model
    net = build_supernet(space, SupernetOptions("els"))
    for arch in _archs(space, 2, seed=2):
        model = export_model(net, arch, drop_els=True)  # that model
        assert count_macs(model, space.input_shape) == table.query(arch).macs
        assert count_params(model) == table.query(arch).params
