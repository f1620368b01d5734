"""Images/s of the streaming loader alone (read, decode, random-resized crop, flip, collate, normalise).

Streams the training split of an image folder (default ../shared/data/cifar10-jpg) through
`supernet.data.StreamingLoader` with training augmentation, at each resolution and worker count, and
prints the wall-clock images/s over `--batches` batches after one warm-up batch (worker start-up is
excluded). Every worker count sees the same batches (the loader is seeded per sample). Wall-clock on a
shared machine: other processes' load is in the numbers; the last lines give the decode-and-augment CPU
time per image of one process, which that load does not change.

Run: PYTHONPATH=src python benchmarks/loader_speed.py [--root DIR] [--resolutions 32 224] [--workers 1 2 4]
     [--batch 128] [--batches 20] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from supernet.data import Augmentation, SampleTransform, StreamingLoader
from supernet.data.folder import list_folder

_REPO = Path(__file__).resolve().parents[1]
# ../shared beside a checkout (/work/main), or two levels up from a worktree (/work/wt/NAME)
DEFAULT_ROOT = next(
    (
        p
        for p in (
            _REPO.parent / "shared" / "data" / "cifar10-jpg",
            _REPO.parents[1] / "shared" / "data" / "cifar10-jpg",
        )
        if p.is_dir()
    ),
    _REPO.parent / "shared" / "data" / "cifar10-jpg",
)


def images_per_second(root: Path, resolution: int, workers: int, batch: int, batches: int) -> float:
    train, _ = list_folder(root)
    loader = StreamingLoader(
        train,
        batch,
        SampleTransform(resolution),
        Augmentation((0.5,) * 3, (0.25,) * 3),
        shuffle=True,
        seed=0,
        drop_last=True,
        train=True,
        workers=workers,
        prefetch_factor=4,
    )
    stream = loader.iter_epoch(0)
    next(stream)  # workers started, first batch decoded
    start, seen = time.perf_counter(), 0
    for _, (images, _) in zip(range(batches), stream):
        seen += len(images)
    return seen / (time.perf_counter() - start)


def cpu_ms_per_image(root: Path, resolution: int, samples: int = 256) -> float:
    """CPU time (this process only, so other processes' load is out) to read, decode and augment one image:
    the work a worker does, whose inverse is the images/s one free core can deliver."""
    train, _ = list_folder(root)
    transform = SampleTransform(resolution)
    start = time.process_time()
    for i in range(samples):
        image, _ = train.load(i)
        with image:
            transform(image, i)
    return 1000 * (time.process_time() - start) / samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[32, 224])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds): does it still run?")
    args = parser.parse_args()
    samples = 256
    if args.smoke:
        args.resolutions, args.workers, args.batch, args.batches, samples = [32], [1], 4, 2, 8
    torch.set_num_threads(1)
    print(
        f"{args.root}: batch {args.batch}, {args.batches} batches after warm-up, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'resolution':>10} {'workers':>8} {'images/s':>10}")
    for resolution in args.resolutions:
        for workers in args.workers:
            rate = images_per_second(args.root, resolution, workers, args.batch, args.batches)
            print(f"{resolution:>10} {workers:>8} {rate:>10.0f}", flush=True)
    for resolution in args.resolutions:
        ms = cpu_ms_per_image(args.root, resolution, samples)
        print(
            f"resolution {resolution}: {ms:.3f} CPU ms per image to decode and augment "
            f"(one free core: {1000 / ms:.0f} images/s)"
        )


if __name__ == "__main__":
    main()
