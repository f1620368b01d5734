"""Training images/s of a supernet (a new path every step) and of the stand-alone model of one arch, fp32 vs bf16.

The supernet is built from a trained run's checkpoint (its space and options) or from --space; the
stand-alone model is `export_model(supernet, arch)` for `--arch` (an arch string or a search
result.json; default: the first sampled path). Both train with the same SGD step on the same
synthetic batch on the chosen device, channels-last, under `off` (fp32) and `bf16` autocast. The
first `--warmup` steps (cuDNN autotuning, allocator) are not timed; the rest are, synchronised.

Run: PYTHONPATH=src python benchmarks/supernet_vs_standalone.py (--supernet RUN | --space S [--preset P])
         [--arch A] [--batch 256] [--steps 30] [--warmup 5] [--device auto] [--threads N] [--smoke]
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import replace

import torch
from torch import nn

from supernet.core.device import Runtime, runtime_for
from supernet.model.export import export_model
from supernet.model.factory import build_supernet
from supernet.model.supernet import SupernetOptions
from supernet.space import create_space
from supernet.train.loop import OptimConfig, make_optimizer


def images_per_second(
    model: nn.Module, forward, paths: list, runtime: Runtime, batch: int, shape, classes: int, warmup: int
) -> float:
    x = runtime.batch(torch.randn(batch, *shape))
    y = runtime.labels(torch.randint(0, classes, (batch,)))
    opt = make_optimizer(model, OptimConfig(epochs=1, lr=0.01))
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    model.train()

    def step(arch) -> None:
        opt.zero_grad(set_to_none=True)
        with runtime.autocast():
            loss = crit(forward(x, arch), y)
        loss.backward()
        opt.step()

    for arch in paths[:warmup]:
        step(arch)
    _sync(runtime)
    start = time.perf_counter()
    for arch in paths[warmup:]:
        step(arch)
    _sync(runtime)
    return batch * (len(paths) - warmup) / (time.perf_counter() - start)


def _sync(runtime: Runtime) -> None:
    if runtime.is_cuda:
        torch.cuda.synchronize(runtime.device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", help="a supernet run directory or checkpoint")
    parser.add_argument("--space", default="scarlet-s1")
    parser.add_argument("--preset", default="cifar")
    parser.add_argument("--arch", help="arch string or search result.json (default: a sampled arch)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (seconds): does it still run?")
    args = parser.parse_args()
    if args.smoke:
        args.space, args.preset, args.batch, args.steps, args.warmup, args.device = (
            "nas-bench-macro",
            "fashion-mnist",
            2,
            1,
            1,
            "cpu",
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    from supernet.runs.load import load_supernet, parse_arch

    if args.supernet:
        net, _ = load_supernet(args.supernet)
        space, options = net.space, net.options
    else:
        space, options = create_space(args.space, preset=args.preset), SupernetOptions()
    rng = random.Random(0)
    paths = [space.sample(rng) for _ in range(args.steps + args.warmup)]
    arch = parse_arch(space, args.arch) if args.arch else paths[0]
    base = runtime_for(args.device, "off", "auto")
    print(
        f"{space.name}: input {space.input_shape}, batch {args.batch}, {args.steps} timed steps after "
        f"{args.warmup} warm-up, device {base.device}, channels-last; stand-alone arch {arch}"
    )
    print(f"{'model':<12} {'amp':<5} {'images/s':>10}")
    rates: dict[tuple[str, str], float] = {}
    for amp in ("off", "bf16"):
        runtime = replace(base, amp=amp)
        torch.manual_seed(0)
        supernet = runtime.prepare(build_supernet(space, options))
        standalone = runtime.prepare(export_model(supernet, arch))
        for label, model, forward in (
            ("supernet", supernet, lambda x, a, m=supernet: m(x, a)),
            ("stand-alone", standalone, lambda x, a, m=standalone: m(x)),
        ):
            rate = images_per_second(
                model, forward, paths, runtime, args.batch, space.input_shape, space.num_classes, args.warmup
            )
            rates[label, amp] = rate
            print(f"{label:<12} {amp:<5} {rate:10.1f}")
    for amp in ("off", "bf16"):
        print(f"supernet / stand-alone ({amp}): {rates['supernet', amp] / rates['stand-alone', amp]:.3f}")
    for label in ("supernet", "stand-alone"):
        print(f"{label} bf16 / fp32: {rates[label, 'bf16'] / rates[label, 'off']:.2f}x")


if __name__ == "__main__":
    main()
