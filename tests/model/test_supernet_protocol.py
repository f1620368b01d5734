"""One supernet interface for chain and cell spaces; the class is picked once, by the space's topology."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from supernet.core.errors import ConfigError
from supernet.model.export import export_model
from supernet.model.factory import SUPERNETS, build_supernet
from supernet.model.protocol import SupernetModel
from supernet.space import create_space


@pytest.mark.parametrize("name", ["scarlet-s1", "nas-bench-201"])
def test_both_topologies_offer_the_protocol(name, tiny_space):
    space = tiny_space if name == "scarlet-s1" else create_space(name, preset="fashion-mnist")
    net = build_supernet(space)
    assert isinstance(net, SupernetModel) and net.topology == space.topology
    arch = space.sample(__import__("random").Random(0))
    net.eval()
    x = torch.randn(2, *space.input_shape)
    with torch.no_grad():
        assert torch.allclose(export_model(net, arch).eval()(x), net(x, arch), atol=1e-5)
    assert len(list(net.path_modules(arch))) > 0


def test_cell_supernet_refuses_layerwise_runs_with_one_line():
    space = create_space("nas-bench-201", preset="fashion-mnist")
    with pytest.raises(ConfigError, match="cell space"):
        build_supernet(space).run_layer(0, space.sample(__import__("random").Random(0)).ops, torch.zeros(1))


def test_unknown_topology_is_a_one_line_error(tiny_space):
    odd = dataclasses.replace(tiny_space, topology="graph")
    with pytest.raises(ConfigError, match="unknown space topology 'graph'; known: cells, chain"):
        build_supernet(odd)
    assert SUPERNETS.names() == ["cells", "chain"]
