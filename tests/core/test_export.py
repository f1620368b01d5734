import json
import random

import pytest
import torch

from tests.conftest import randomize_batchnorm

from supernet.cost import CostTable
from supernet.cost.counter import count_macs, count_params
from supernet.model.export import export_model, standalone_config
from supernet.model.standalone import StandaloneNet
from supernet.model.supernet import Supernet, SupernetOptions
from supernet.space import create_space


@pytest.mark.parametrize("bn_affine", [False, True])
def test_skip_export_matches_supernet_path(tiny_space, bn_affine):
    net = randomize_batchnorm(Supernet(tiny_space, SupernetOptions("skip", bn_affine)))
    x = torch.randn(4, *tiny_space.input_shape)
    rng = random.Random(1)
    archs = [tiny_space.sample(rng) for _ in range(5)] + [tiny_space.parse_arch(",".join(
        "id" if "id" in layer.choices else "e6k7" for layer in tiny_space.layers))]
    for arch in archs:
        model = export_model(net, arch).eval()
        torch.testing.assert_close(model(x), net(x, arch), rtol=1e-5, atol=1e-5)


def test_els_export_matches_without_identity_and_drops_els(tiny_space):
    net = randomize_batchnorm(Supernet(tiny_space, SupernetOptions("els")))
    x = torch.randn(4, *tiny_space.input_shape)
    no_id = tiny_space.parse_arch(",".join("e3k5" for _ in tiny_space.layers))
    torch.testing.assert_close(export_model(net, no_id).eval()(x), net(x, no_id), rtol=1e-5, atol=1e-5)
    with_id = tiny_space.parse_arch(",".join("id" if "id" in l.choices else "e3k5" for l in tiny_space.layers))
    model = export_model(net, with_id)
    assert not any(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1) and m.bias is None
                   and m.in_channels == m.out_channels and m.groups == 1 and m.stride == (1, 1)
                   and type(model[0]) is torch.nn.Conv2d for m in model)
    assert len(model) < len(export_model(net, no_id))


@pytest.mark.parametrize("identity", ["skip", "els"])
def test_exported_costs_equal_cost_model(identity):
    space = create_space("scarlet-s1", preset="fashion-mnist", identity_in="all", layers_per_stage=(1, 2, 1, 1, 2, 1))
    table = CostTable.build(space, identity)
    net = Supernet(space, SupernetOptions(identity))
    rng = random.Random(0)
    for _ in range(4):
        arch = space.sample(rng)
        model = export_model(net, arch)
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
