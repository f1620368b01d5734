"""Ranking experiment: how well do supernets trained in different ways rank stand-alone accuracy?

Fashion-MNIST, a small scarlet-s1 chain space with identity choices (fashion-mnist preset, width
0.25, layers_per_stage (1,2,1,2,1,1): 8 searchable layers, 3 of them with an `id` choice).

Arms (each trained with 3 seeds):
    identity     skip | els          (SCARLET's equivariant learnable stabilizer)
    sampler      uniform | fair      (SPOS uniform single path | FairNAS strict fairness)
    interchoice  none | bias         (inter-choice dependent bias weights; the arm is skipped when
                                      this toolkit's SupernetConfig has no `interchoice` field)

Ground truth: N random archs trained stand-alone from scratch (`supernet.analysis.groundtruth`).
Every supernet ranks the same archs (BN recalibrated per arch, as in search); per arm we report
Kendall tau over seeds (mean ± std, min..max), Spearman, top-k overlap, the improvement metric at
n = 10, the self-consistency between the arm's seeds (mean pairwise Kendall tau), and SCARLET's
feature similarity of the `id` candidate to the other candidates of the first layer that has one.

Fair sampling trains m = 7 paths per step. By default (`--fair-budget compute`) a fair supernet
gets 1/7 of the steps per epoch (train.max_steps_per_epoch), so all arms cost the same number of
forward/backward passes; `--fair-budget epochs` gives it the same number of steps instead (7x cost).

Everything lands in --out (default runs/ranking-experiment[-quick]) and the script is resumable:
finished stand-alone archs, supernets (done.json) and rankings (rank.json) are skipped, and an
interrupted training resumes from its last checkpoint.

Cost of the full run, measured piece by piece on 2 pinned CPU cores (torch 2 threads): a stand-alone
arch (4 epochs on 10,000 images, ~0.8 val accuracy) ~45 s, so 32 archs ~25 min; a supernet
(20 epochs, 1,560 steps; ~0.5 sampled-path accuracy) ~3.6 min, so 24 supernets (4 arms x 2
interchoice x 3 seeds) ~87 min; ranking ~1 s per arch and supernet, ~13 min: about 2.1 h in
all, so cores a third slower still fit in 3 h. `--quick` shrinks everything to a few
minutes as an end-to-end check (its numbers are noise: nothing is trained beyond chance).

    PYTHONPATH=src python benchmarks/ranking_experiment.py --quick
    PYTHONPATH=src python benchmarks/ranking_experiment.py            # hours; re-run to resume
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from supernet.analysis.groundtruth import run_groundtruth, sample_archs  # noqa: E402
from supernet.analysis.ranking import rank_supernets  # noqa: E402
from supernet.analysis.similarity import run_similarity  # noqa: E402
from supernet.config import Config, SupernetConfig, load_config  # noqa: E402
from supernet.io import atomic_write_text  # noqa: E402
from supernet.workflow import build_space, load_data, train_supernet  # noqa: E402

SPACE = "{width: 0.25, head_channels: 32, layers_per_stage: [1,2,1,2,1,1], stem_stride: 2}"
SIZES = {
    # full: 10,000 training images, 2,000 validation images (ranking and ground-truth val accuracy)
    "full": dict(train_limit=12000, val_size=2000, supernet_epochs=20, standalone_epochs=4, archs=32, seeds=3,
                 recal_batches=8, checkpoint_every=100),
    "quick": dict(train_limit=1500, val_size=500, supernet_epochs=1, standalone_epochs=1, archs=6, seeds=2,
                  recal_batches=2, checkpoint_every=0),
}


def base_overrides(size: dict) -> list[str]:
    root = [f"data.root={size['data_root']}"] if size.get("data_root") else []
    return root + [
        "data.name=fashion-mnist", f"data.train_limit={size['train_limit']}", f"data.val_size={size['val_size']}",
        "space.name=scarlet-s1", "space.preset=fashion-mnist", f"space.options={SPACE}",
        f"train.epochs={size['supernet_epochs']}", "train.batch_size=128", "train.lr=0.1", "train.progress=false",
        f"train.checkpoint_every_steps={size['checkpoint_every']}",
        f"eval.recal_batches={size['recal_batches']}", "eval.recal_batch_size=128", "eval.val_batch_size=500",
        f"standalone.epochs={size['standalone_epochs']}", "standalone.batch_size=128", "standalone.lr=0.05",
        "standalone.progress=false",
    ]


def has_interchoice() -> bool:
    return "interchoice" in {f.name for f in dataclasses.fields(SupernetConfig)}


def arms(with_bias: bool) -> list[tuple[str, str, str]]:
    out = []
    for interchoice in ("none", "bias") if with_bias else ("none",):
        for identity in ("skip", "els"):
            for sampler in ("uniform", "fair"):
                out.append((identity, sampler, interchoice))
    return out


def arm_name(arm: tuple[str, str, str]) -> str:
    return "-".join(arm)


def supernet_config(size: dict, arm: tuple[str, str, str], seed: int, fair_budget: str) -> Config:
    identity, sampler, interchoice = arm
    extra = [f"supernet.identity={identity}", f"train.sampler={sampler}", f"train.seed={seed}"]
    if interchoice != "none":
        extra.append(f"supernet.interchoice={interchoice}")
    cfg = load_config(None, base_overrides(size) + extra)
    if sampler == "fair" and fair_budget == "compute":
        steps = (size["train_limit"] - size["val_size"]) // cfg.train.batch_size
        m = max(len(layer.choices) for layer in build_space(cfg, load_data(cfg)).layers)
        cfg.train.max_steps_per_epoch = max(1, math.ceil(steps / m))
    return cfg


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: an end-to-end check in a few minutes")
    p.add_argument("--out", help="output folder (default runs/ranking-experiment[-quick])")
    p.add_argument("--data-root", help="Fashion-MNIST folder (default: the toolkit's default location)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--fair-budget", choices=("compute", "epochs"), default="compute")
    p.add_argument("--archs", type=int, help="ground-truth archs (default 32; quick 6)")
    p.add_argument("--seeds", type=int, help="seeds per arm (default 3; quick 2)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    size = dict(SIZES["quick" if args.quick else "full"])
    size["archs"] = args.archs or size["archs"]
    size["seeds"] = args.seeds or size["seeds"]
    size["data_root"] = args.data_root
    out = Path(args.out or ROOT / "runs" / ("ranking-experiment-quick" if args.quick else "ranking-experiment"))
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with_bias = has_interchoice()
    if not with_bias:
        log("SupernetConfig has no `interchoice` field: the bias arm is skipped")

    # 1. ground truth (each arch resumable; finished archs skipped)
    gt_cfg = load_config(None, base_overrides(size))
    space = build_space(gt_cfg, load_data(gt_cfg))
    gt = run_groundtruth(gt_cfg, out / "groundtruth", sample_archs(space, size["archs"], seed=0),
                         log=lambda m: log("groundtruth " + m))
    log(f"ground truth: {gt['rows']} archs ({len(gt['trained'])} trained now)")
    gt_csv = out / "groundtruth" / "groundtruth.csv"

    # 2. supernets, 3. rankings, 4. feature similarity
    results = {}
    for arm in arms(with_bias):
        name = arm_name(arm)
        runs = []
        for seed in range(size["seeds"]):
            run_dir = out / "supernets" / f"{name}-s{seed}"
            runs.append(run_dir)
            if (run_dir / "done.json").is_file():
                continue
            t = time.time()
            cfg = supernet_config(size, arm, seed, args.fair_budget)
            trained = train_supernet(cfg, run_dir, resume=True)
            last = trained["epochs"][-1] if trained["epochs"] else {}
            atomic_write_text(run_dir / "done.json", json.dumps({"seconds": time.time() - t, "last_epoch": last}))
            log(f"supernet {name} seed {seed}: {time.time() - t:.0f}s, last epoch path acc "
                f"{last.get('acc_mean', float('nan')):.3f}")
        rank_dir = out / "rank" / name
        if not (rank_dir / "rank.json").is_file():
            rank_supernets(supernet_config(size, arm, 0, args.fair_budget), runs, gt_csv, rank_dir)
        rank = json.loads((rank_dir / "rank.json").read_text())
        sim_dir = out / "similarity" / name
        if not (sim_dir / "similarity.json").is_file():
            layer = next(i for i, spec in enumerate(space.layers) if "id" in spec.choices)
            run_similarity(supernet_config(size, arm, 0, args.fair_budget), runs[0], layer, sim_dir, batch_size=128)
        sim = json.loads((sim_dir / "similarity.json").read_text())
        results[name] = summarise(rank, sim)
        log(f"ranked {name}: Kendall tau {format_row(name, results[name])}")

    table = format_table(results, gt["rows"], size)
    atomic_write_text(out / "summary.json", json.dumps({"sizes": size, "fair_budget": args.fair_budget,
                                                        "interchoice_arm": with_bias, "arms": results}, indent=1))
    atomic_write_text(out / "summary.md", table + "\n")
    print(table)
    log(f"done in {time.time() - start:.0f}s; results in {out}")
    return 0


def _stats(values: list[float | None]) -> dict[str, float]:
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return {"mean": float("nan"), "std": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0,
            "min": min(v), "max": max(v)}


def summarise(rank: dict, sim: dict) -> dict:
    s = rank["supernets"]
    sc = rank.get("self_consistency", {}).get("mean", {})
    ops = sim["ops"]
    return {"seeds": len(s), "kendall": _stats([x["kendall"] for x in s]),
            "spearman": _stats([x["spearman"] for x in s]), "topk": _stats([x["topk_overlap"] for x in s]),
            "improvement": _stats([x["improvement"] for x in s]),
            "self_kendall": sc.get("kendall"),
            "id_similarity": sim["mean_similarity_to_others"][ops.index("id")] if "id" in ops else None}


def _f(v: float | None, spec: str = ".3f") -> str:
    return "nan" if v is None or v != v else format(v, spec)


def format_row(name: str, r: dict) -> str:
    k = r["kendall"]
    return (f"{_f(k['mean'])} ± {_f(k['std'])} [{_f(k['min'])}, {_f(k['max'])}]  spearman {_f(r['spearman']['mean'])}  "
            f"top-k {_f(r['topk']['mean'], '.2f')}  improv@10 {_f(r['improvement']['mean'])}  "
            f"self-KT {_f(r['self_kendall'])}  sim(id) {_f(r['id_similarity'])}")


def format_table(results: dict, n_archs: int, size: dict) -> str:
    lines = [f"Kendall tau vs stand-alone ground truth ({n_archs} archs; {size['seeds']} seeds per arm; "
             f"mean ± std [min, max])",
             f"{'arm (identity-sampler-interchoice)':<36} {'Kendall tau':<30} {'Spearman':>8} {'top-k':>6} "
             f"{'improv@10':>9} {'self-KT':>8} {'sim(id)':>8}"]
    for name, r in results.items():
        k = r["kendall"]
        tau = f"{_f(k['mean'])} ± {_f(k['std'])} [{_f(k['min'])}, {_f(k['max'])}]"
        lines.append(f"{name:<36} {tau:<30} {_f(r['spearman']['mean']):>8} {_f(r['topk']['mean'], '.2f'):>6} "
                     f"{_f(r['improvement']['mean']):>9} {_f(r['self_kendall']):>8} {_f(r['id_similarity']):>8}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
