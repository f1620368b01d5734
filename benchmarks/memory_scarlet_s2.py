"""Peak RSS of building the full-size scarlet-s2 supernet (224x224, 1000 classes) and one
training step on a batch of 8.   /usr/bin/time -v python benchmarks/memory_scarlet_s2.py"""

import random
import resource

import torch

from supernet.model.supernet import Supernet
from supernet.space import create_space

space = create_space("scarlet-s2")
net = Supernet(space)
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
x, y = torch.randn(8, 3, 224, 224), torch.randint(0, 1000, (8,))
loss = torch.nn.functional.cross_entropy(net(x, space.sample(random.Random(0))), y)
loss.backward()
opt.step()
params = sum(p.numel() for p in net.parameters())
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"supernet parameters {params / 1e6:.1f}M; peak RSS {peak_mib:.0f} MiB")
