"""Does a few-shot part keep what it inherits? (issue 28.12)

Few-shot NAS (Zhao et al. 2021) splits a trained one-shot supernet on some layers' choices; each part starts
from the one-shot weights and is fine-tuned on its part of the space. Our parts restart the schedule at
`train.lr` without warm-up, as the authors' code does (`supernet.jobs.few_shot.part_config`). A warm restart
can undo the inheritance: this script measures it. For the first parts of the split it samples archs of the
part, scores them on the one-shot supernet, then on the part at 0 steps (the inherited weights: the same
scores) and after its first fine-tuning steps under the part's own schedule (`Trainer.fit(until_step)`),
with the same recalibration and validation images. It prints per part and step the lr, the mean score on the
one-shot supernet and on the part, their mean and worst difference, and Kendall tau between the two.

    PYTHONPATH=src python benchmarks/few_shot_inheritance.py --supernet RUN [--layers 0] [--steps 0,10,50,200]
        [--set eval.val_limit=1000] [--out inheritance.json]
    PYTHONPATH=src python benchmarks/few_shot_inheritance.py --smoke     # a tiny supernet trained here (seconds)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _smoke import smoke_macro_supernet  # noqa: E402

from supernet.analysis import metrics as M  # noqa: E402
from supernet.core.io import atomic_write_text  # noqa: E402
from supernet.jobs.few_shot import part_config  # noqa: E402
from supernet.model.factory import build_supernet  # noqa: E402
from supernet.model.fewshot import few_shot_parts, part_choices  # noqa: E402
from supernet.model.inherit import inherit_state  # noqa: E402
from supernet.runs.build import build_evaluator, load_data, require_batches, runtime_of, train_loader  # noqa: E402
from supernet.runs.load import default_config, load_supernet  # noqa: E402
from supernet.train.loop import scheduled_lr  # noqa: E402
from supernet.train.sampler import SAMPLERS, create_sampler  # noqa: E402
from supernet.train.wiring import supernet_trainer  # noqa: E402


def sample_archs(space, count: int, seed: int) -> list:
    """Up to `count` distinct archs of `space`, seeded."""
    rng = random.Random(seed)
    found: dict = {}
    for _ in range(count * 20):
        found.setdefault(space.sample(rng), None)
        if len(found) == count:
            break
    return list(found)


def measure_part(cfg, net, splits, oneshot, layers: list[int], ops: tuple, steps: list[int], paths: int) -> list[dict]:
    """Rows (one per step count) for the part of `net` whose `layers` take `ops`."""
    sub = part_config(cfg)
    space = net.space.restrict(part_choices(net.space, layers, ops))
    part = build_supernet(space, net.options)
    part.load_state_dict(inherit_state(net.state_dict(), part, "few-shot part"))
    archs = sample_archs(space, paths, seed=cfg.train.seed)
    before = oneshot.evaluate_many(archs)
    train = sub.train
    options = dict(train.sampler_options)
    sampler = create_sampler(train.sampler, space, identity=net.options.identity, **options)
    loader = require_batches(train_loader(sub, splits, train.batch_size, train.seed), "train.batch_size")
    rows = []
    with tempfile.TemporaryDirectory(prefix="few-shot-inheritance-") as scratch:
        meta = {"kind": "supernet", "space_fingerprint": space.fingerprint()}
        trainer = supernet_trainer(part, sampler, loader, train, Path(scratch), meta, runtime_of(sub))
        for step in steps:
            trainer.fit(until_step=step)
            after = build_evaluator(sub, part, splits).evaluate_many(archs)
            diffs = [a - b for a, b in zip(after, before, strict=True)]
            lr = scheduled_lr(train.schedule, train.lr, trainer.global_step, trainer.total_steps, trainer.warmup)
            rows.append(
                {
                    "part": "-".join(ops),
                    "step": trainer.global_step,
                    "of_steps": trainer.total_steps,
                    "lr": lr,
                    "archs": len(archs),
                    "one_shot": statistics.fmean(before),
                    "part_score": statistics.fmean(after),
                    "mean_diff": statistics.fmean(diffs),
                    "worst_diff": min(diffs),
                    "kendall": M.kendall_tau(after, before) if len(archs) > 1 else float("nan"),
                }
            )
    return rows


def table(rows: list[dict]) -> str:
    head = "| part | step | of | lr | archs | one-shot | part | mean diff | worst diff | tau vs one-shot |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['part']} | {r['step']} | {r['of_steps']} | {r['lr']:.4f} | {r['archs']} | {r['one_shot']:.4f} "
            f"| {r['part_score']:.4f} | {r['mean_diff']:+.4f} | {r['worst_diff']:+.4f} | {r['kendall']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--supernet", help="a trained one-shot supernet run directory (required unless --smoke)")
    p.add_argument("--layers", default="0", help="comma-separated layers to split on (train.few_shot_layers)")
    p.add_argument("--parts", type=int, default=2, help="measure the first this many parts")
    p.add_argument("--paths", type=int, default=20, help="archs per part")
    p.add_argument("--steps", default="0,10,50,200", help="comma-separated fine-tuning steps to score at")
    p.add_argument("--set", action="append", default=[], help="config override (section.field=v)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="write the rows as JSON here")
    p.add_argument("--smoke", action="store_true", help="a tiny supernet trained here, two steps (seconds)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if not args.supernet and not args.smoke:
        p.error("--supernet RUN is required (or --smoke)")
    with tempfile.TemporaryDirectory(prefix="few-shot-smoke-") as scratch:
        if args.smoke:
            args.supernet, args.parts, args.paths, args.steps = str(smoke_macro_supernet(Path(scratch))), 1, 3, "0,2"
        run(args)


def run(args: argparse.Namespace) -> None:
    layers = [int(v) for v in args.layers.split(",")]
    steps = sorted(int(v) for v in args.steps.split(","))
    cfg = default_config(args.supernet, None, args.set)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, few_shot_layers=layers))
    SAMPLERS.get(cfg.train.sampler)  # a known sampler, before any work
    net, _ = load_supernet(Path(args.supernet))
    splits = load_data(cfg)
    oneshot = build_evaluator(cfg, net, splits)
    start = time.time()
    rows = []
    for ops in list(few_shot_parts(net.space, layers))[: args.parts]:
        rows += measure_part(cfg, net, splits, oneshot, layers, ops, steps, args.paths)
    print(table(rows))
    print(f"({time.time() - start:.0f} s; lr: the part's schedule at that step, warm restart at train.lr)")
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(M.json_safe(rows), indent=1))


if __name__ == "__main__":
    main()
