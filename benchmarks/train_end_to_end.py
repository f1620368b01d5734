"""`supernet train` end to end against a bare training loop: images/s, and the channels-last speed-up.

`supernet train` here is `supernet.jobs.train.train_supernet` (what the CLI verb calls): data loading and
augmentation, path sampling, the Trainer with its per-step JSONL logging, progress bookkeeping and a
checkpoint after every epoch. The bare loop runs the same model (built the same way, same device and
memory format), the same batches (the same `BatchLoader` and augmentation) and the same paths, with
plain SGD and nothing else: no logging, no checkpoints, no NaN check. Both are timed on the same
number of steps; the dataset is decoded once before either is timed (the verb's own `load_data` call
is counted in "verb total" and excluded from "verb fit").

Each variant (channels-last on/off) runs `--repeats` times, interleaved; medians are printed. On a
shared machine run it when the load is low, and read the spread.

Run: PYTHONPATH=src python benchmarks/train_end_to_end.py [--space scarlet-s1] [--steps 20] [--batch 128]
         [--repeats 3] [--threads 1] [--device auto] [--amp off] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from supernet.config.schema import Config, load_config
from supernet.data import DatasetSplits
from supernet.jobs.train import train_supernet
from supernet.model.factory import build_supernet
from supernet.runs.build import build_space, load_data, runtime_of, train_loader
from supernet.train.loop import cosine_lr, make_optimizer
from supernet.train.sampler import create_sampler, step_rng


def make_config(args: argparse.Namespace, channels_last: bool) -> Config:
    overrides = [
        f"space.name={args.space}",
        f"space.preset={args.preset}",
        f"data.name={args.data}",
        f"train.batch_size={args.batch}",
        "train.epochs=1",
        f"train.max_steps_per_epoch={args.steps}",
        "train.progress=false",
        f"train.channels_last={str(channels_last).lower()}",
        f"train.amp={args.amp}",
        f"data.train_limit={args.batch * args.steps + args.val_size}",
        f"data.val_size={args.val_size}",
    ]
    cfg = load_config(None, overrides)
    cfg.device = args.device
    return cfg


def time_verb(cfg: Config, splits: DatasetSplits | None = None) -> tuple[float, float]:
    """(total seconds, seconds in Trainer.fit) of `train_supernet` into a fresh run directory.

    With `splits` (already decoded) the verb skips its own `load_data`, so the total holds no decoding.
    """
    from supernet.train import loop

    fit_time = {}
    original = loop.Trainer.fit

    def timed_fit(self):
        start = time.perf_counter()
        out = original(self)
        _sync(self.runtime.device)
        fit_time["s"] = time.perf_counter() - start
        return out

    loop.Trainer.fit = timed_fit
    try:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            train_supernet(cfg, Path(tmp) / "run", splits=splits)
            return time.perf_counter() - start, fit_time["s"]
    finally:
        loop.Trainer.fit = original


def time_bare(cfg: Config, splits) -> float:
    """Seconds of a minimal loop over the same model, batches, paths and memory format."""
    runtime = runtime_of(cfg)
    t = cfg.train
    torch.manual_seed(t.seed)
    space = build_space(cfg, splits)
    net = runtime.prepare(build_supernet(space, cfg.supernet).train())
    sampler = create_sampler(t.sampler, space, identity=cfg.supernet.identity)
    loader = train_loader(cfg, splits, t.batch_size, t.seed)
    optim = make_optimizer(net, t)
    crit = nn.CrossEntropyLoss(label_smoothing=t.label_smoothing)
    steps = min(len(loader), t.max_steps_per_epoch or len(loader))
    batches = loader.iter_epoch(0)
    start = time.perf_counter()
    for step in range(steps):
        x, y = next(batches)
        x, y = runtime.batch(x), runtime.labels(y)
        for group in optim.param_groups:
            group["lr"] = cosine_lr(t.lr, step, steps)
        optim.zero_grad(set_to_none=True)
        for arch in sampler.paths(step_rng(t.seed, 0, step)):
            with runtime.autocast():
                loss = crit(net(x, arch), y)
            loss.backward()
        optim.step()
    _sync(runtime.device)
    return time.perf_counter() - start


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="scarlet-s1")
    parser.add_argument("--preset", default="fashion-mnist")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default="off")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (seconds): does it still run?")
    args = parser.parse_args()
    args.val_size = 2000
    if args.smoke:
        args.space, args.steps, args.batch, args.repeats, args.device, args.val_size = (
            "nas-bench-macro",
            2,
            8,
            1,
            "cpu",
            32,
        )
    torch.set_num_threads(args.threads)
    splits = load_data(make_config(args, True))
    images = args.steps * args.batch
    results: dict[str, dict[str, list[float]]] = {}
    for r in range(args.repeats):
        for layout in [True, False] if r % 2 == 0 else [False, True]:
            cfg = make_config(args, layout)
            total, fit = time_verb(cfg)
            bare = time_bare(cfg, splits)
            row = results.setdefault("channels-last" if layout else "nchw", {"total": [], "fit": [], "bare": []})
            row["total"].append(total)
            row["fit"].append(fit)
            row["bare"].append(bare)
    print(
        f"{args.space} ({args.preset}) on {args.data}, device {runtime_of(make_config(args, True)).device}, "
        f"amp {args.amp}, batch {args.batch}, {args.steps} steps, {args.threads} thread(s), "
        f"median of {args.repeats}"
    )
    print(f"{'format':<14} {'verb total img/s':>17} {'verb fit img/s':>15} {'bare loop img/s':>16} {'fit/bare':>9}")
    medians = {}
    for label, row in results.items():
        total, fit, bare = (statistics.median(row[k]) for k in ("total", "fit", "bare"))
        medians[label] = fit
        print(f"{label:<14} {images / total:17.1f} {images / fit:15.1f} {images / bare:16.1f} {bare / fit:9.3f}")
    if len(medians) == 2:
        print(f"channels-last speed-up of `supernet train` (fit): {medians['nchw'] / medians['channels-last']:.2f}x")


if __name__ == "__main__":
    main()
