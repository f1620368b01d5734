"""Channels-last vs NCHW: one supernet training step (uniform path, SGD) per space, this machine's CPU.

For each space (preset as given), the same supernet, the same random batch and the same sequence of
random paths are timed with the model and batches in NCHW (`torch.contiguous_format`) and in
channels-last; also with bf16 autocast on top of channels-last. The times are medians over
interleaved repeats of wall time per step (one torch thread unless --threads). This decides
`train.channels_last: auto` (see `supernet.core.device.runtime_for`).

Run: PYTHONPATH=src python benchmarks/channels_last.py [--repeats 5] [--steps 3] [--batch 128]
         [--spaces nas-bench-macro:cifar10,scarlet-s1:fashion-mnist] [--smoke]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from torch import nn

from supernet.core.device import Runtime
from supernet.model.factory import build_supernet
from supernet.model.supernet import SupernetOptions
from supernet.space import create_space
from supernet.train.loop import OptimConfig, make_optimizer

DEFAULT_SPACES = "nas-bench-macro:cifar10,scarlet-s1:fashion-mnist,scarlet-s1:cifar,nas-bench-201:cifar10"
VARIANTS = {
    "nchw": Runtime(channels_last=False),
    "channels-last": Runtime(channels_last=True),
    "channels-last+bf16": Runtime(channels_last=True, amp="bf16"),
}


def stepper(space, runtime: Runtime, batch: int):
    torch.manual_seed(0)
    net = runtime.prepare(build_supernet(space, SupernetOptions()).train())
    opt = make_optimizer(net, OptimConfig(epochs=1, lr=0.01))
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    x = runtime.batch(torch.randn(batch, *space.input_shape))
    y = torch.randint(0, space.num_classes, (batch,))
    rng = random.Random(0)

    def step() -> None:
        arch = space.sample(rng)
        opt.zero_grad(set_to_none=True)
        with runtime.autocast():
            loss = crit(net(x, arch), y)
        loss.backward()
        opt.step()

    return step


def timed(step, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def bench(name: str, preset: str, batch: int, repeats: int, steps: int) -> None:
    space = create_space(name, preset=preset)
    runs = {label: stepper(space, rt, batch) for label, rt in VARIANTS.items()}
    for step in runs.values():
        timed(step, 1)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(repeats):
        order = list(runs)[r % len(runs) :] + list(runs)[: r % len(runs)]
        for label in order:
            times[label].append(timed(runs[label], steps))
    base = statistics.median(times["nchw"])
    print(f"\n{name} ({preset}): input {space.input_shape}, batch {batch}")
    print(f"{'format':<20} {'s/step':>8} {'img/s':>8} {'speed-up':>9}")
    for label, values in times.items():
        med = statistics.median(values)
        print(f"{label:<20} {med:8.3f} {batch / med:8.1f} {base / med:8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--spaces", default=DEFAULT_SPACES, help="name:preset,... ")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds): does it still run?")
    args = parser.parse_args()
    if args.smoke:
        args.repeats, args.steps, args.batch, args.spaces = 1, 1, 2, "nas-bench-macro:fashion-mnist"
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats} x {args.steps} steps")
    for item in args.spaces.split(","):
        name, _, preset = item.partition(":")
        bench(name, preset or None, args.batch, args.repeats, args.steps)


if __name__ == "__main__":
    main()
