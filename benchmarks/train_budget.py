"""How long a config's supernet training takes on this machine, from a short run of the same schedule.

Does a recipe fit the hour a CPU user may spend? Training it to find out costs that hour. This runs
`supernet train`'s own code (`train_supernet`: logging, checkpoints, the configured sampler) on the config
with every setting kept but the length: one epoch of `--steps` steps, so a sampler whose draws change over
the training (`deep-first`: full-depth paths for its first quarter) goes through each of its phases in the
same proportion as the whole run does. The fit's seconds per step, times the config's own number of steps
(epochs x steps per epoch of its data), is the estimate; decoding the data is timed apart (once per
training). Evaluation, search and the first step's warm-up beyond the short run's share are not in it.

Run it with the thread count the training will use, and nothing else heavy on the machine:

    PYTHONPATH=src python benchmarks/train_budget.py --config configs/cifar10-nas-bench-macro.yaml \
        --set data.root=DIR [--set train.sampler=deep-first ...] [--steps 96] [--threads 2]
    PYTHONPATH=src python benchmarks/train_budget.py --smoke   # a tiny supernet on Fashion-MNIST (seconds)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from train_end_to_end import time_verb  # noqa: E402

from supernet.config.schema import Config, load_config
from supernet.core.errors import SupernetError
from supernet.data import DatasetSplits
from supernet.runs.build import load_data, train_loader
from supernet.train.loop import steps_per_epoch

SMOKE = [
    "space.name=nas-bench-macro",
    "space.preset=fashion-mnist",
    "space.options.width=0.25",
    "data.train_limit=96",
    "data.val_size=32",
    "train.batch_size=8",
    "train.epochs=3",
]


def schedule_steps(cfg: Config, splits: DatasetSplits) -> int:
    """The training's steps in all: epochs x the steps of one epoch of its loader."""
    loader = train_loader(cfg, splits, cfg.train.batch_size, cfg.train.seed)
    return cfg.train.epochs * steps_per_epoch(loader, cfg.train)


def refuse(message: str) -> None:
    """A one-line error on stderr and exit code 2 (bad input, as the CLI's)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="the run config (YAML) whose training is timed")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE override, as `supernet train --set`")
    parser.add_argument("--steps", type=int, default=96, help="steps of the short run (default 96)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2: both cores)")
    parser.add_argument("--smoke", action="store_true", help="a tiny supernet on Fashion-MNIST (seconds)")
    args = parser.parse_args()
    if args.steps < 1:
        refuse(f"--steps must be at least 1, got {args.steps}")
    overrides = (SMOKE if args.smoke else []) + list(args.set)
    if args.smoke:
        args.steps = 4
    torch.set_num_threads(args.threads)
    try:
        cfg = load_config(args.config, overrides)
        start = time.perf_counter()
        splits = load_data(cfg)
        load_s = time.perf_counter() - start
        total = schedule_steps(cfg, splits)
        steps = min(args.steps, total)
        short = load_config(
            args.config,
            [*overrides, "train.epochs=1", f"train.max_steps_per_epoch={steps}", "train.progress=false"],
        )
        fit_s = time_verb(short, splits)[1]
    except SupernetError as e:
        refuse(str(e))
    per_step = fit_s / steps
    print(
        f"{args.config or 'default config'} {' '.join(args.set)}: sampler {cfg.train.sampler}, "
        f"{cfg.train.epochs} epochs, {total} steps, batch {cfg.train.batch_size}, {args.threads} thread(s)"
    )
    print(f"data decoded in {load_s:.1f} s; short run: {steps} steps in {fit_s:.1f} s ({per_step:.3f} s/step)")
    print(f"estimated training: {per_step * total / 60:.1f} min (+ {load_s / 60:.1f} min of data decoding)")


if __name__ == "__main__":
    main()
