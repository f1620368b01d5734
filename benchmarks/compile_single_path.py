"""Does `torch.compile` help single-path supernet training, where the path changes every step?

Four loops, the same batch, SGD training steps:
  supernet eager        a new uniformly sampled path every step (as `supernet train`)
  supernet compiled     `torch.compile(supernet)`, a new path every step: dynamo specialises on the
                        path, so each new path compiles again until its recompile limit, then runs eager
  stand-alone eager     one fixed arch (the export of the first path), for reference
  stand-alone compiled  the same, compiled once
Printed: the first step (includes compilation), the median of the later steps, and the total. The
CPU build needs a C++ compiler for inductor; a compile failure is reported, not fatal.

Run: PYTHONPATH=src python benchmarks/compile_single_path.py [--space nas-bench-macro] [--preset fashion-mnist]
         [--steps 12] [--batch 64] [--threads 1] [--device auto] [--smoke]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from supernet.core.device import Runtime, runtime_for
from supernet.model.export import export_model
from supernet.model.factory import build_supernet
from supernet.model.supernet import SupernetOptions
from supernet.space import create_space
from supernet.train.loop import OptimConfig, make_optimizer


def loop(model: nn.Module, forward: Callable, paths: list, runtime: Runtime, x, y) -> list[float]:
    opt = make_optimizer(model, OptimConfig(epochs=1, lr=0.01))
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    times = []
    for arch in paths:
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with runtime.autocast():
            loss = crit(forward(x, arch), y)
        loss.backward()
        opt.step()
        if runtime.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="nas-bench-macro")
    parser.add_argument("--preset", default="fashion-mnist")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default="off")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, eager loops only (seconds)")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.batch, args.device = 2, 2, "cpu"
    torch.set_num_threads(args.threads)
    runtime = runtime_for(args.device, args.amp, "auto")
    space = create_space(args.space, preset=args.preset)
    rng = random.Random(0)
    paths = [space.sample(rng) for _ in range(args.steps)]
    x = runtime.batch(torch.randn(args.batch, *space.input_shape))
    y = runtime.labels(torch.randint(0, space.num_classes, (args.batch,)))
    print(
        f"{args.space} ({args.preset}), batch {args.batch}, {args.steps} steps, device {runtime.device}, "
        f"amp {args.amp}, channels-last, torch {torch.__version__}, {args.threads} thread(s)"
    )
    print(f"{'loop':<22} {'first step s':>12} {'later median s':>15} {'total s':>9}")
    for label, compiled, standalone in (
        ("supernet eager", False, False),
        ("supernet compiled", True, False),
        ("stand-alone eager", False, True),
        ("stand-alone compiled", True, True),
    ):
        if compiled and args.smoke:  # compiling takes minutes on a CPU
            print(f"{label:<22} not run (--smoke)")
            continue
        torch.manual_seed(0)
        torch._dynamo.reset()
        net = runtime.prepare(build_supernet(space, SupernetOptions()).train())
        model = runtime.prepare(export_model(net, paths[0]).train()) if standalone else net
        fn = torch.compile(model) if compiled else model
        forward = (lambda x, a, fn=fn: fn(x)) if standalone else (lambda x, a, fn=fn: fn(x, a))
        try:
            times = loop(model, forward, paths, runtime, x, y)
        except Exception as e:  # noqa: BLE001 - e.g. no C++ compiler for inductor
            print(f"{label:<22} failed: {type(e).__name__}: {str(e).splitlines()[0][:100]}")
            continue
        later = statistics.median(times[1:]) if len(times) > 1 else float("nan")
        print(f"{label:<22} {times[0]:12.3f} {later:15.3f} {sum(times):9.2f}")


if __name__ == "__main__":
    main()
