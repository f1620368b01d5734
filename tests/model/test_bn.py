import random

import pytest
import torch

from supernet.model.bn import path_batchnorms, recalibrate_path
from supernet.model.supernet import Supernet, SupernetOptions


def test_recalibration_resets_and_averages_exactly(tiny_space):
    net = Supernet(tiny_space).eval()
    arch = tiny_space.sample(random.Random(0))
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(16, *tiny_space.input_shape, generator=g) * 3 + 1 for _ in range(3)]
    first_bn = net.stem[0][1]
    first_bn.running_mean.fill_(100.0)
    recalibrate_path(net, arch, batches, reset=True)
    conv = net.stem[0][0]
    with torch.no_grad():
        means = [conv(b).mean((0, 2, 3)) for b in batches]
    torch.testing.assert_close(first_bn.running_mean, torch.stack(means).mean(0), rtol=1e-4, atol=1e-5)
    assert first_bn.momentum == 0.1 and not net.training and not first_bn.training  # state restored


def test_recalibration_touches_only_the_path(tiny_space):
    net = Supernet(tiny_space)
    rng = random.Random(0)
    arch = tiny_space.sample(rng)
    on_path = {id(bn) for bn in path_batchnorms(net.path_modules(arch))}
    before = {id(m): m.running_mean.clone() for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    recalibrate_path(net, arch, [torch.randn(8, *tiny_space.input_shape) + 2], reset=True)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert torch.equal(before[id(m)], m.running_mean) == (id(m) not in on_path)


@pytest.mark.parametrize("interchoice, reset", [("none", True), ("bias", False), ("split", False)])
def test_recalibration_resets_by_method_unless_the_config_says(tiny_space, interchoice, reset):
    # SPOS re-estimates BN statistics from scratch; the inter-choice paper (App. B) found resetting harmful
    from supernet.config.schema import load_config
    from supernet.runs.build import eval_settings, recal_reset
    from supernet.search.supernet_evaluator import SupernetEvaluator

    by_method = load_config(overrides=[f"supernet.interchoice={interchoice}"])
    assert recal_reset(by_method) is reset
    assert eval_settings(by_method)["recal_reset"] is reset  # what search results and journal keys record
    for forced in (True, False):
        sets = [f"supernet.interchoice={interchoice}", f"eval.recal_reset={str(forced).lower()}"]
        assert recal_reset(load_config(overrides=sets)) is forced
    net = Supernet(tiny_space, SupernetOptions(interchoice=interchoice, interchoice_bias_at="pre_act"))
    assert recal_reset(load_config(), net) is reset  # the scored supernet's method, whatever the config says
    assert SupernetEvaluator(net, [], []).reset is reset  # the Python API's evaluator follows the same default
