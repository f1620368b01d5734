"""Supernet training-step overhead: supernet step time / stand-alone step time for the same arch.

For each space, one arch (with `id` where the space allows it), one batch; the stand-alone model is
`export_model(supernet, arch)`; both are trained the same way (SGD with momentum, nesterov, weight
decay over all of the model's parameters, as `supernet.train.loop.Trainer` does; zero_grad
set_to_none, forward, label-smoothed cross-entropy, backward, step). Variants: plain (skip),
`els`, inter-choice `bias` with D = 1, 2, 3, and `split` (after the split). Timings are medians over
interleaved repeats of the thread's CPU time, one torch thread (the machine is shared).

Run: PYTHONPATH=src python benchmarks/train_speed.py [--repeats 15] [--steps 5] [--batch 64] [--smoke]

A space that fails is reported and the script exits 1 (it used to print "skipped" and exit 0, so a
broken benchmark went unnoticed).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

from supernet.core.errors import ConfigError
from supernet.model.export import export_model
from supernet.model.supernet import Supernet, SupernetOptions
from supernet.space import Arch, create_space, list_spaces
from supernet.train.loop import OptimConfig, make_optimizer

VARIANTS: dict[str, dict] = {
    "plain": {},
    "els": {"identity": "els"},
    "bias D=1": {"interchoice": "bias", "interchoice_depth": 1},
    "bias D=2": {"interchoice": "bias", "interchoice_depth": 2},
    "bias D=3": {"interchoice": "bias", "interchoice_depth": 3},
    "split": {"interchoice": "split"},
}
SPACES = {"scarlet-s1": {"preset": "fashion-mnist"}, "nas-bench-201": {}}


def build(space, options: SupernetOptions) -> nn.Module:
    """The supernet class for the space's topology (chain `Supernet`, or a cell supernet if available)."""
    try:
        from supernet.model.factory import build_supernet
    except ImportError:
        return Supernet(space, options)
    return build_supernet(space, options)


def stepper(
    model: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> Callable[[], None]:
    opt = make_optimizer(model, OptimConfig(epochs=1, lr=0.01))
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        crit(forward(x), y).backward()
        opt.step()

    return step


def timed(step: Callable[[], None], n: int) -> float:
    """CPU time of this thread per step (with one torch thread, all the work runs here): on a shared
    machine it does not count the time the process waits for a core, which wall time does."""
    start = time.thread_time()
    for _ in range(n):
        step()
    return (time.thread_time() - start) / n


def bench_space(name: str, options: dict, batch: int, repeats: int, steps: int) -> list[tuple[str, float, int]]:
    space = create_space(name, **options)
    rng = random.Random(0)
    arch = Arch(
        tuple(
            "id"
            if "id" in layer.choices and i % 3 == 0
            else rng.choice([op for op in layer.choices if op != "none"] or layer.choices)
            for i, layer in enumerate(space.layers)
        )
    )
    torch.manual_seed(0)
    x = torch.randn(batch, *space.input_shape)
    y = torch.randint(0, space.num_classes, (batch,))
    runs: dict[str, Callable[[], None]] = {}
    tensors: dict[str, int] = {}
    unsupported: dict[str, str] = {}
    for label, kw in VARIANTS.items():
        try:
            net = build(space, SupernetOptions(**kw)).train()
        except ConfigError as e:  # e.g. inter-choice weights in a cell space
            unsupported[label] = str(e).split(";")[0]
            continue
        if kw.get("interchoice") == "split":
            net.split_interchoice()
        runs[label] = stepper(net, lambda x, net=net: net(x, arch), x, y)
        tensors[label] = sum(1 for _ in net.parameters())
    standalone = export_model(build(space, SupernetOptions()), arch).train()
    runs["stand-alone"] = stepper(standalone, standalone, x, y)
    tensors["stand-alone"] = sum(1 for _ in standalone.parameters())
    for step in runs.values():  # warm-up: momentum buffers, allocator
        timed(step, 2)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(repeats):  # interleaved, in a rotating order
        order = list(runs)
        order = order[r % len(order) :] + order[: r % len(order)]
        for label in order:
            times[label].append(timed(runs[label], steps))
    base = statistics.median(times["stand-alone"])
    print(f"\n{name} {options or ''}: {space.num_layers} layers, input {space.input_shape}, batch {batch}, arch {arch}")
    print(f"{'variant':<12} {'step ms':>9} {'ratio':>7} {'param tensors':>14}")
    rows = []
    for label in ["stand-alone", *VARIANTS]:
        if label in unsupported:
            print(f"{label:<12} {'n/a':>9} {'':>7} {'':>14}  ({unsupported[label]})")
            continue
        med = statistics.median(times[label])
        rows.append((label, med / base, tensors[label]))
        print(f"{label:<12} {med * 1e3:9.2f} {med / base:7.3f} {tensors[label]:14d}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds): does it still run?")
    args = parser.parse_args()
    if args.smoke:  # and three variants (plain, inter-choice bias, split)
        args.repeats, args.steps, args.batch = 1, 1, 2
        for label in ("els", "bias D=2", "bias D=3"):
            del VARIANTS[label]
    torch.set_num_threads(1)
    registered = {e.name for e in list_spaces()}
    failed = []
    for name, options in SPACES.items():
        if name not in registered:
            print(f"\n{name}: not registered, skipped")
            continue
        try:
            bench_space(name, options, args.batch, args.repeats, args.steps)
        except Exception as e:  # noqa: BLE001 - reported, then the exit status says it
            print(f"\n{name}: FAILED ({type(e).__name__}: {e})")
            failed.append(name)
    if failed:
        sys.exit(f"train_speed: {len(failed)} space(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
