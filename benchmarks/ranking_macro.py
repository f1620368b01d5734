"""Ranking study on NAS-Bench-Macro: how well do supernets trained in different ways rank 100 archs
whose CIFAR-10 accuracy the benchmark knows?

Supernets of the `nas-bench-macro` space (cifar10 preset: full width, 32x32, 10 classes) are trained on
CIFAR-10 (`--data-root`, class-per-folder JPEGs; a seeded validation split is held out of the training
images) with one setting changed at a time from a base, and every one scores the same 100 archs: one
drawn per accuracy-quantile stratum of the benchmark (`stratified_sample`, seed 0). Per run: Kendall
tau, Spearman, top-10 overlap and Kendall tau among the benchmark's better half of the 100, against the
benchmark's mean accuracy; beside them the ceiling (the benchmark's own run-vs-run tau) and the
zero-cost bars (MACs-only, params-only). Every arm has the same training budget in forward/backward
passes (`--budget` passes of one batch); fair sampling runs m = 3 paths per step, so it gets a third
of the steps. CPU minutes (process time) and wall minutes of training are recorded per run.

Arms (name: what differs from `base`; `ARMS` below). Eval-only arms reuse a trained supernet and
change only how it is scored (BN recalibration size, number of validation images).

Resumable: a finished supernet has `done.json`, a scored one `<eval>.json`; an interrupted training
resumes from its last checkpoint. Several processes may share --out if they run disjoint --arms.

    PYTHONPATH=src python benchmarks/ranking_macro.py --quick                  # end to end, ~2-3 min
    PYTHONPATH=src python benchmarks/ranking_macro.py --arms base --seeds 0,1  # one queue
    PYTHONPATH=src python benchmarks/ranking_macro.py --summary                # the table of what is done
    PYTHONPATH=src python benchmarks/ranking_macro.py --arms base,wd-5e-4 --score-by loss  # every arm by exp(-loss)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _smoke import benchmark_file  # noqa: E402

from supernet.analysis import metrics as M
from supernet.analysis.benchmark import Benchmark, load_benchmark, reference, stratified_sample
from supernet.config.schema import Config, load_config
from supernet.core.io import atomic_write_text
from supernet.space import Arch

BENCH_FILE = str(ROOT.parent / "shared" / "data" / "nas-bench-macro" / "nas-bench-macro_cifar10.json")
DATA_ROOT = str(ROOT.parent / "shared" / "data" / "cifar10-jpg")


@dataclass(frozen=True)
class Arm:
    name: str
    train: tuple[str, ...] = ()  # config overrides on top of the base training
    evaluation: str = "default"  # key of EVALS
    paths_per_step: int = 1  # forward/backward passes per step (fair: m = 3)
    budget_factor: int = 1  # training budget in multiples of the size's budget
    few_shot_parts: int = 0  # few-shot: half the budget one-shot, the other half shared by this many parts
    note: str = ""
    scoring: tuple[str, ...] = ()  # `eval.*` overrides of an eval-only arm (scores the base supernet)

    @property
    def score_key(self) -> str:
        return self.name if self.scoring else self.evaluation

    def score_overrides(self, score_by: str) -> tuple[str, ...]:
        """`eval.*` overrides that score this arm by `score_by` (accuracy | loss); none where the arm's own
        scoring already sets the metric (the `loss` arms) or for accuracy (the evaluator's default)."""
        if score_by == "accuracy" or any(o.startswith("eval.metric=") for o in self.scoring):
            return ()
        return (f"eval.metric={score_by}",)

    def score_file(self, score_by: str) -> str:
        """The score's file in the supernet's run folder: one per arm scoring and metric, so scores by loss
        and by accuracy of the same supernet sit side by side."""
        suffix = f"-{score_by}" if self.score_overrides(score_by) else ""
        return f"score-{self.score_key}{suffix}.json"


ARMS = {
    a.name: a
    for a in (
        Arm("base", note="uniform, skip, no inter-choice; the size's lr, batch and warm-up (SIZES), cosine"),
        Arm("no-warmup", ("train.warmup_steps=0",), note="lr 0.1 from step 0"),
        Arm("no-zero-init", ("supernet.zero_init_residual=false",), note="residual BN gammas start at 1"),
        Arm("no-bn-affine", ("supernet.bn_affine=false",), note="official SPOS supernet BN"),
        Arm(
            "plain-spos",
            ("supernet.zero_init_residual=false", "supernet.bn_affine=false"),
            note="neither of the two learnability defaults",
        ),
        Arm("base-2x", budget_factor=2, note="base with twice the training budget (2 epochs)"),
        Arm("fair", ("train.sampler=fair",), paths_per_step=3, note="FairNAS, 3 paths per step, 1/3 of the steps"),
        Arm("els", ("supernet.identity=els",), note="SCARLET ELS"),
        Arm("constrained", ("train.sampler=uniform-constrained",), note="SPOS constrained sampling"),
        Arm("bias", ("supernet.interchoice=bias", "supernet.interchoice_bias_at=pre_act"), note="inter-choice bias"),
        Arm("split", ("supernet.interchoice=split", "supernet.split_epoch=1"), note="inter-choice split"),
        Arm("lr-0.05", ("train.lr=0.05",), note="twice the base lr"),
        Arm("lr-0.1", ("train.lr=0.1",), note="the toolkit's default lr"),
        Arm("lr-0.1-warm1ep", ("train.lr=0.1", "train.warmup_steps=359"), note="lr 0.1 after a one-epoch warm-up"),
        Arm("lr-0.05-warm1ep", ("train.lr=0.05", "train.warmup_steps=359"), note="lr 0.05 after a one-epoch warm-up"),
        Arm(
            "fair-lr-0.05-warm1ep",
            ("train.sampler=fair", "train.lr=0.05", "train.warmup_steps=120"),
            paths_per_step=3,
            note="fair sampling and lr 0.05 after a one-epoch warm-up (120 steps of 3 paths)",
        ),
        # issue 21 (size w1: base = lr 0.1 at batch 128, no warm-up, cosine, uniform)
        Arm("canonical", ("supernet.canonical=true",), note="one weight path per network (canonical identities)"),
        Arm("depth-balanced", ("train.sampler=depth-balanced",), note="depth drawn uniformly, then layers and ops"),
        Arm(
            "canonical-depth",
            ("supernet.canonical=true", "train.sampler=depth-balanced"),
            note="canonical identities and depth-balanced sampling",
        ),
        Arm("sandwich", ("train.sampler=sandwich",), paths_per_step=4, note="largest, smallest, 2 random; 1/4 steps"),
        Arm(
            "sandwich-distill",
            ("train.sampler=sandwich", "train.distill=true"),
            paths_per_step=4,
            note="sandwich with in-place distillation from the largest path",
        ),
        Arm("linear", ("train.schedule=linear",), note="linear decay in place of cosine"),
        Arm(
            "few-shot",
            ("train.few_shot_layers=[0]",),
            few_shot_parts=3,
            note="few-shot split on layer 0 (3 parts); half the budget one-shot, 1/6 per part",
        ),
        # issue 31: training arms against the depth bias (each one change from base)
        Arm(
            "identity-0.15",
            ("train.sampler_options={identity_prob: 0.15}",),
            note="uniform, but a layer skips with probability 0.15 (uniform: 1/3)",
        ),
        Arm(
            "deep-first",
            ("train.sampler=deep-first", "supernet.canonical=true"),
            note="full-depth paths for the first 25% of the steps, then uniform paths in canonical form",
        ),
        Arm(
            "pairwise-macs",
            ("train.sampler_options={paths: 2}", "train.pairwise_rank_weight=2.0"),
            paths_per_step=2,
            note="two uniform paths per step + hinge ranking loss, MACs prior, weight 2 sin(0.8 pi t/T)",
        ),
        Arm(
            "wd-5e-4",
            ("train.weight_decay=5e-4",),
            note="weight decay 5e-4 (the benchmark's own stand-alone training, uninas, XNAS) in place of SPOS's 4e-5",
        ),
        Arm(
            "sandwich-distill-lr0.05",
            ("train.sampler=sandwich", "train.distill=true", "train.lr=0.05", "train.warmup_steps=50"),
            paths_per_step=4,
            note="sandwich + in-place distillation at lr 0.05 after a 50-step warm-up",
        ),
        # issue 31: scoring without retraining
        Arm(
            "twins-canonical",
            scoring=("eval.twins=canonical",),
            note="base supernet, each network by its canonical string",
        ),
        Arm("twins-mean", scoring=("eval.twins=mean",), note="base supernet, the mean over a network's spellings"),
        Arm(
            "bn-batch",
            scoring=("eval.bn=batch",),
            note="base supernet, BN with each validation batch's statistics (Yu et al.'s BN without running "
            "statistics: training-mode BN uses batch statistics anyway, so no retraining)",
        ),
        Arm("loss", scoring=("eval.metric=loss",), note="base supernet, exp(-validation loss) as the score"),
        Arm(
            "twins-canonical-loss",
            scoring=("eval.twins=canonical", "eval.metric=loss"),
            note="base supernet, loss score of each network's canonical string",
        ),
        Arm(
            "twins-mean-loss",
            scoring=("eval.twins=mean", "eval.metric=loss"),
            note="base supernet, loss score averaged over a network's spellings",
        ),
        Arm("val-2000", evaluation="val2000", note="base supernet, 2000 validation images"),
        Arm("recal-12", evaluation="recal12", note="base supernet, 12 recalibration batches"),
    )
}
# the supernet an arm scores: eval-only arms share the base supernet
TRAIN_KEY = {
    name: name if a.train or a.paths_per_step > 1 or a.budget_factor > 1 else "base" for name, a in ARMS.items()
}

SIZES = {
    # budget: forward/backward passes of one batch per supernet: one epoch of the 23,000 training images at batch 64
    # (~0.37 CPU-s each at width 0.5; ~2.2 CPU minutes per supernet)
    "full": {
        "max_per_class": 2500,
        "val_size": 2000,
        "width": 0.5,
        "batch": 64,
        "lr": 0.025,
        "budget": 359,
        "warmup": 25,
        "archs": 100,
        "ckpt": 100,
        "evals": {"default": (3, 500), "val2000": (3, 2000), "recal12": (12, 500)},
    },
    # issue 21: full width, 28,000 training images, batch 128 at lr 0.1 with the global warm-up (none), 8 x 128
    # recalibration images and 3,000 validation images per arch; budget: 6 epochs of 218 steps
    "w1": {
        "max_per_class": 3000,
        "val_size": 2000,
        "width": 1.0,
        "batch": 128,
        "lr": 0.1,
        "budget": 1308,
        "warmup": 0,
        "archs": 100,
        "ckpt": 100,
        "evals": {"default": (8, 3000), "val2000": (8, 2000), "recal12": (12, 3000)},
    },
    "quick": {
        "max_per_class": 120,
        "val_size": 200,
        "width": 0.5,
        "batch": 32,
        "lr": 0.025,
        "budget": 6,
        "warmup": 2,
        "archs": 8,
        "ckpt": 0,
        "evals": {"default": (1, 100), "val2000": (1, 200), "recal12": (2, 100)},
    },
}

# --smoke: on top of a copy of "quick"
SMOKE_SIZE = {
    "max_per_class": 12,
    "val_size": 20,
    "budget": 2,
    "archs": 4,
    "batch": 8,
    "width": 0.25,
    "recal_batch": 16,
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def base_overrides(size: dict, data_root: str) -> list[str]:
    return [
        "data.name=folder",
        f"data.root={data_root}",
        "data.resolution=32",
        f"data.max_per_class={size['max_per_class']}",
        f"data.val_size={size['val_size']}",
        "space.name=nas-bench-macro",
        "space.preset=cifar10",
        f"space.options={{width: {size['width']}}}",
        f"train.batch_size={size['batch']}",
        f"train.lr={size['lr']}",
        f"train.warmup_steps={size['warmup']}",
        "train.progress=false",
        f"train.checkpoint_every_steps={size['ckpt']}",
        f"eval.recal_batch_size={size.get('recal_batch', 128)}",
        "eval.val_batch_size=250",
    ]


def arm_config(size: dict, data_root: str, arm: Arm, seed: int, score_by: str = "accuracy") -> Config:
    """The arm's config: `budget / paths_per_step` steps, as epochs of at most the loader's length."""
    steps = max(1, size["budget"] * arm.budget_factor // arm.paths_per_step)
    per_epoch = (size["max_per_class"] * 10 - size["val_size"]) // size["batch"]
    epochs = math.ceil(steps / per_epoch)
    recal, val = size["evals"][arm.evaluation]
    extra = []
    if arm.few_shot_parts:  # whole epochs: half of the steps one-shot, the rest split over the parts
        per_step = min(per_epoch, steps)
        epochs = max(1, round(steps / 2 / per_step))
        shot = max(1, round(steps / 2 / arm.few_shot_parts / per_step))
        steps = epochs * per_step
        extra = [f"train.few_shot_epochs={shot}"]
    return load_config(
        None,
        base_overrides(size, data_root)
        + list(arm.train)
        + [
            f"train.seed={seed}",
            f"train.epochs={epochs}",
            f"train.max_steps_per_epoch={math.ceil(steps / epochs)}",
            f"eval.recal_batches={recal}",
            f"eval.val_limit={val}",
        ]
        + extra
        + list(arm.scoring)
        + list(arm.score_overrides(score_by)),
    )


def train(cfg: Config, run_dir: Path) -> dict[str, Any]:
    from supernet.jobs.train import train_supernet

    done = run_dir / "done.json"
    if done.is_file():
        return json.loads(done.read_text())
    cpu, wall = time.process_time(), time.time()
    out = train_supernet(cfg, run_dir, resume=(run_dir / "checkpoints").is_dir())
    # the cost of this (last) attempt; an interrupted earlier attempt's is not counted
    cost = {"cpu_min": (time.process_time() - cpu) / 60, "wall_min": (time.time() - wall) / 60}
    last = out["epochs"][-1] if out["epochs"] else {}
    result = {**cost, "steps": out["global_step"], "last_loss": last.get("loss"), "last_acc": last.get("acc_mean")}
    atomic_write_text(done, json.dumps(result, indent=1))
    return result


def score(cfg: Config, run_dir: Path, archs: list[Arch], bench: Benchmark, score_file: str) -> dict[str, Any]:
    from supernet.jobs.rank import predict

    path = run_dir / score_file
    if path.is_file():
        return json.loads(path.read_text())
    start = time.time()
    # on the prefix tree (the same scores, sooner), through the run's evaluation cache: `search` and
    # `score_dump.py` see them too
    pred = predict(cfg, run_dir, archs)
    true = bench.accuracy(archs)
    result = {
        "metrics": metrics(pred, true),
        "eval_min": (time.time() - start) / 60,
        "predictions": pred,
        "archs": [a.to_string() for a in archs],
    }
    atomic_write_text(path, json.dumps(M.json_safe(result), indent=1))
    return result


def metrics(pred: list[float], true: list[float]) -> dict[str, float]:
    median = statistics.median(true)
    top = [i for i, t in enumerate(true) if t > median]
    return {
        "kendall": M.kendall_tau(pred, true),
        "spearman": M.spearman(pred, true),
        "top10": M.topk_overlap(pred, true, min(10, len(true))),
        "kendall_top_half": M.kendall_tau([pred[i] for i in top], [true[i] for i in top]),
    }


def depth_metrics(pred: list[float], true: list[float], archs: list[Arch]) -> dict[str, float]:
    """Kendall tau within groups of equal depth (what depth alone cannot order) and the depth bar itself."""
    depths = [M.depth(a.ops) for a in archs]
    return {
        "kendall_within_depth": M.kendall_within_groups(pred, true, depths),
        "depth_only": M.kendall_tau(depths, true),
    }


def run(args: argparse.Namespace, size: dict, out: Path, bench: Benchmark, archs: list[Arch]) -> None:
    for name in args.arms:
        arm = ARMS[name]
        for seed in args.seeds:
            cfg = arm_config(size, args.data_root, arm, seed, args.score_by)
            run_dir = out / "supernets" / f"{TRAIN_KEY[name]}-s{seed}"
            log(f"{name} seed {seed}: training {run_dir.name}")
            cost = train(cfg, run_dir)
            log(f"{name} seed {seed}: trained in {cost['cpu_min']:.1f} CPU min (loss {cost['last_loss']:.3f})")
            if args.no_score:
                continue
            result = score(cfg, run_dir, archs, bench, arm.score_file(args.score_by))
            log(f"{name} seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in result["metrics"].items()))


def summary(out: Path, bench: Benchmark, archs: list[Arch], score_by: str = "accuracy") -> str:
    ref = reference(bench, archs)
    rows = []
    for name, arm in ARMS.items():
        found = []
        for run_dir in sorted((out / "supernets").glob(f"{TRAIN_KEY[name]}-s*")):
            s, d = run_dir / arm.score_file(score_by), run_dir / "done.json"
            if s.is_file() and d.is_file():
                found.append((json.loads(s.read_text()), json.loads(d.read_text())))
        if found:
            rows.append((name, arm, found))
    lines = [
        f"scored by {score_by}; {len(archs)} archs; ceiling (benchmark run vs run Kendall tau): "
        + ", ".join(f"{k} {v:.3f}" for k, v in ref["ceiling_kendall"].items()),
        "zero-cost bars (Kendall tau): " + ", ".join(f"{k}-only {v:.3f}" for k, v in ref["zero_cost_kendall"].items()),
        "",
        "| arm | change | seeds | Kendall tau | Spearman | top-10 | tau top half | tau within depth | train CPU min "
        "| eval min |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, arm, found in rows:
        cells = [
            _mean_spread([f[0]["metrics"][k] for f in found])
            for k in ("kendall", "spearman", "top10", "kendall_top_half")
        ]
        cells.append(
            _mean_spread(
                [
                    depth_metrics(f[0]["predictions"], bench.accuracy(archs), archs)["kendall_within_depth"]
                    for f in found
                ]
            )
        )
        cpu = statistics.fmean(f[1]["cpu_min"] for f in found)
        ev = statistics.fmean(f[0]["eval_min"] for f in found)
        lines.append(f"| {name} | {arm.note} | {len(found)} | " + " | ".join(cells) + f" | {cpu:.1f} | {ev:.1f} |")
    lines += ["", *depth_curves(rows, bench, archs)]
    table = "\n".join(lines)
    suffix = "" if score_by == "accuracy" else f"-{score_by}"
    atomic_write_text(out / f"summary{suffix}.md", table + "\n")
    if rows:
        best = max(rows, key=lambda r: statistics.fmean(_finite([f[0]["metrics"]["kendall"] for f in r[2]]) or [-1]))
        picked = [r for r in rows if r[0] in ("base", best[0])]
        plot_scatter({r[0]: r[2][0][0] for r in picked}, bench, archs, out / f"scatter{suffix}.png")
    atomic_write_text(out / "reference.json", json.dumps(M.json_safe(ref), indent=1))
    return table


def depth_curve(values: list[float], archs: list[Arch]) -> dict[int, float]:
    """Mean of `values` per depth (non-identity layers), in percent."""
    groups: dict[int, list[float]] = {}
    for v, a in zip(values, archs):
        groups.setdefault(M.depth(a.ops), []).append(100 * v)
    return {d: statistics.fmean(vs) for d, vs in sorted(groups.items())}


def depth_curves(rows: list, bench: Benchmark, archs: list[Arch]) -> list[str]:
    """The benchmark's and each arm's mean accuracy per depth (seed mean): where the supernet undervalues depth."""
    truth = depth_curve(bench.accuracy(archs), archs)
    curves = {"benchmark": truth}
    for name, _, found in rows:
        per_seed = [depth_curve(f[0]["predictions"], archs) for f in found]
        curves[name] = {d: statistics.fmean(c[d] for c in per_seed) for d in truth}
    counts = {d: sum(M.depth(a.ops) == d for a in archs) for d in truth}
    head = "| depth (archs) | " + " | ".join(curves) + " |"
    lines = [
        "Mean score per depth (%: accuracy, or 100 exp(-loss) for an arm scored by loss):",
        "",
        head,
        "|" + "---|" * (len(curves) + 1),
    ]
    for d in truth:
        lines.append(f"| {d} ({counts[d]}) | " + " | ".join(f"{c[d]:.1f}" for c in curves.values()) + " |")
    return lines


def _finite(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None and not math.isnan(v)]


def plot_scatter(scores: dict[str, dict[str, Any]], bench: Benchmark, archs: list[Arch], path: Path) -> None:
    """Supernet accuracy (x) vs the benchmark's mean accuracy (y) of the 100 archs, one panel per arm (seed 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    true = [100 * a for a in bench.accuracy(archs)]
    fig, axes = plt.subplots(1, len(scores), figsize=(5 * len(scores), 4.2), squeeze=False)
    for ax, (name, result) in zip(axes[0], scores.items()):
        pred = [100 * p for p in result["predictions"]]
        ax.scatter(pred, true, s=12, alpha=0.7)
        ax.set_title(f"{name}: Kendall tau {result['metrics']['kendall']:.3f}")
        ax.set_xlabel("supernet accuracy (%), BN recalibrated")
        ax.set_ylabel("NAS-Bench-Macro mean test accuracy (%)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mean_spread(values: list[float]) -> str:
    values = _finite(values)
    if not values:
        return "nan"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f} ({min(values):.2f}..{max(values):.2f})"


def study_size(args: argparse.Namespace) -> dict[str, Any]:
    """The study's size (`SIZES`, a copy) with the command line's changes: smoke, budget, width, images, epochs."""
    size = dict(SIZES[args.size or ("quick" if args.quick or args.smoke else "full")])
    if args.smoke:  # the quick size, tinier (a copy: the study's sizes stay as they are)
        size.update(SMOKE_SIZE)
    if args.budget:
        size["budget"] = args.budget
    if args.width:
        size["width"] = args.width
    if args.max_per_class is not None:
        size["max_per_class"] = args.max_per_class
    if args.epochs:
        size["budget"] = round(args.epochs * (size["max_per_class"] * 10 - size["val_size"]) // size["batch"])
    return size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: an end-to-end check, its numbers are noise")
    p.add_argument("--smoke", action="store_true", help="--quick, tinier still (seconds), a synthetic benchmark file")
    p.add_argument("--size", choices=sorted(SIZES), help="the study's size (default full; --quick: quick)")
    p.add_argument("--out", help="results folder (default runs/ranking-macro[-quick])")
    p.add_argument("--arms", default="base", help=f"comma-separated, in order; known: {', '.join(ARMS)}")
    p.add_argument("--seeds", default="0", help="comma-separated training seeds")
    p.add_argument("--benchmark-file", default=BENCH_FILE)
    p.add_argument("--data-root", default=DATA_ROOT)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    p.add_argument("--budget", type=int, help="forward/backward passes per supernet (default: the size's)")
    p.add_argument("--epochs", type=float, help="budget in epochs of the training split (overrides --budget)")
    p.add_argument("--width", type=float, help="channel width multiplier of the space (default: the size's, 0.5)")
    p.add_argument(
        "--max-per-class",
        type=int,
        help="images per class read before the validation split (default: the size's, 3,000 at w1; 5,000: all of "
        "CIFAR-10's 50,000, 48,000 of them for training); --epochs counts epochs of what is left after the split",
    )
    p.add_argument("--no-score", action="store_true", help="train only (e.g. to probe the loss curve)")
    p.add_argument("--summary", action="store_true", help="only print (and write) the table of finished runs")
    p.add_argument(
        "--score-by",
        choices=("accuracy", "loss"),
        default="accuracy",
        help="every arm's score: validation accuracy (default) or exp(-validation loss), the shipped config's "
        "`eval.metric`; training arms are compared fairly only when all are scored the same way",
    )
    args = p.parse_args()
    args.arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    unknown = [a for a in args.arms if a not in ARMS]
    if unknown:
        sys.exit(f"unknown arm {unknown[0]}; known: {', '.join(ARMS)}")
    torch.set_num_threads(args.threads)
    if args.max_per_class is not None and args.max_per_class < 1:
        p.error(f"--max-per-class must be at least 1, got {args.max_per_class}")
    size = study_size(args)
    out = Path(args.out or ROOT / ("runs/ranking-macro-quick" if args.quick else "runs/ranking-macro"))
    out.mkdir(parents=True, exist_ok=True)
    args.benchmark_file = benchmark_file(args.benchmark_file, args.smoke, out)
    from supernet.runs.build import build_space

    space = build_space(load_config(None, ["space.name=nas-bench-macro", "space.preset=cifar10"]))
    bench = load_benchmark("nas-bench-macro", args.benchmark_file, space)
    archs = stratified_sample(bench, size["archs"], seed=0)
    atomic_write_text(out / "archs.txt", "".join(a.to_string() + "\n" for a in archs))
    if not args.summary:
        log(f"pid {os.getpid()}: arms {args.arms}, seeds {args.seeds} -> {out}")
        run(args, size, out, bench, archs)
    print(summary(out, bench, archs, args.score_by))


if __name__ == "__main__":
    main()
