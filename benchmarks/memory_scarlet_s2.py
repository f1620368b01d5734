"""Peak RSS of building the full-size scarlet-s2 supernet (224x224, 1000 classes) and one
training step on a batch of 8.   /usr/bin/time -v python benchmarks/memory_scarlet_s2.py [--smoke]

`--smoke`: the fashion-mnist preset and a batch of 2 (seconds; its peak RSS means nothing)."""

import argparse
import random
import resource

import torch

from supernet.model.supernet import Supernet
from supernet.space import create_space


def main(preset: str | None = None, batch: int = 8) -> None:
    space = create_space("scarlet-s2", preset=preset)
    net = Supernet(space)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(batch, *space.input_shape), torch.randint(0, space.num_classes, (batch,))
    loss = torch.nn.functional.cross_entropy(net(x, space.sample(random.Random(0))), y)
    loss.backward()
    opt.step()
    params = sum(p.numel() for p in net.parameters())
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"supernet parameters {params / 1e6:.1f}M; peak RSS {peak_mib:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds): does it still run?")
    if parser.parse_args().smoke:
        main(preset="fashion-mnist", batch=2)
    else:
        main()
