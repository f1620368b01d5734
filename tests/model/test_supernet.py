import random

import pytest
import torch

from supernet.core.errors import ConfigError
from supernet.model.supernet import Supernet, SupernetOptions


def _batch(space, n=8):
    c, h, w = space.input_shape
    return torch.randn(n, c, h, w), torch.randint(0, space.num_classes, (n,))


@pytest.mark.parametrize("identity", ["skip", "els"])
def test_forward_runs_only_the_chosen_path(tiny_space, identity):
    net = Supernet(tiny_space, SupernetOptions(identity=identity))
    arch = tiny_space.sample(random.Random(3))
    x, y = _batch(tiny_space)
    torch.nn.functional.cross_entropy(net(x, arch), y).backward()
    for i, (layer, chosen) in enumerate(zip(net.choices, arch.ops)):
        for op, block in layer.items():
            grads = [p.grad for p in block.parameters()]
            if op == chosen:
                assert all(g is not None for g in grads), (i, op)
            else:
                assert all(g is None for g in grads), (i, op)


def test_a_step_leaves_unsampled_candidates_bit_identical(tiny_space):
    net = Supernet(tiny_space)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    rng = random.Random(0)
    x, y = _batch(tiny_space)
    for _ in range(2):  # build momentum buffers on some candidates first
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x, tiny_space.sample(rng)), y).backward()
        opt.step()
    arch = tiny_space.sample(rng)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(net(x, arch), y).backward()
    opt.step()
    after = net.state_dict()
    for i, chosen in enumerate(arch.ops):
        for op in tiny_space.layers[i].choices:
            prefix = f"choices.{i}.{op}."
            keys = [k for k in before if k.startswith(prefix)]
            changed = any(not torch.equal(before[k], after[k]) for k in keys)
            assert changed == (op == chosen and bool(list(net.choices[i][op].parameters()))), (i, op)


def test_els_is_a_bare_1x1_conv(tiny_space):
    net = Supernet(tiny_space, SupernetOptions(identity="els"))
    i = next(i for i, layer in enumerate(tiny_space.layers) if "id" in layer.choices)
    els = net.choices[i]["id"]
    assert isinstance(els, torch.nn.Conv2d) and els.kernel_size == (1, 1) and els.bias is None


def test_bad_identity_option():
    with pytest.raises(ConfigError, match="supernet.identity"):
        SupernetOptions(identity="zero")
