"""`train.no_decay_bn`: no weight decay on BatchNorm parameters and inter-choice bias vectors (issue 15 item 18)."""

import pytest
import torch
from train_helpers import tiny_space

from supernet.model.factory import build_supernet
from supernet.model.supernet import SupernetOptions
from supernet.train.loop import OptimConfig, make_optimizer


def _decay_step(net, no_decay_bn: bool) -> dict[str, torch.Tensor]:
    """One SGD step with zero gradients everywhere: only weight decay moves a parameter."""
    opt = make_optimizer(net, OptimConfig(epochs=1, lr=0.5, momentum=0.0, weight_decay=0.1, no_decay_bn=no_decay_bn))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.25)  # bias vectors and BN biases start at zero, where decay would not show
            p.grad = torch.zeros_like(p)
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    opt.step()
    return {k: ~torch.equal(before[k], v) for k, v in net.named_parameters()}


@pytest.mark.parametrize("no_decay_bn", [True, False])
def test_no_decay_bn_exempts_batchnorm_and_bias_vectors(no_decay_bn):
    net = build_supernet(tiny_space(), SupernetOptions(interchoice="bias", interchoice_bias_at="pre_act"))
    bn = {
        f"{m}.{p}"
        for m, mod in net.named_modules()
        if isinstance(mod, torch.nn.BatchNorm2d)
        for p, _ in mod.named_parameters(recurse=False)
    }
    vectors = {k for k, _ in net.named_parameters() if k.startswith("biases.")}
    assert bn and vectors
    moved = _decay_step(net, no_decay_bn)
    exempt = bn | vectors
    assert all(moved[k] != no_decay_bn for k in exempt)
    assert all(moved[k] for k in moved if k not in exempt)  # convs, ELS and the classifier still decay


def test_no_decay_bn_is_the_default_of_both_training_sections():
    from supernet.config.schema import Config

    assert Config().train.no_decay_bn and Config().standalone.no_decay_bn and OptimConfig(epochs=1, lr=0.1).no_decay_bn
