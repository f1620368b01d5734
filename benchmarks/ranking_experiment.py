"""Ranking experiment: how well do supernets trained in different ways rank stand-alone accuracy?

Fashion-MNIST, a small scarlet-s1 chain space with an identity choice in every layer (fashion-mnist
preset, width 0.25, layers_per_stage (1,2,1,2,1,1), identity_in=all: 8 searchable layers of 7
choices, SCARLET's setting; where a layer changes shape the identity is a 1x1 projection or a
strided ELS).

Arms (each trained with 3 seeds):
    identity     skip | els          (SCARLET's equivariant learnable stabilizer)
    sampler      uniform | fair      (SPOS uniform single path | FairNAS strict fairness)
    interchoice  none | bias         (inter-choice dependent bias weights, D = 1, added before each
                                      block's first activation: `interchoice_bias_at=pre_act`. The
                                      paper's input placement is inert in MobileNet-block chains:
                                      train-mode BatchNorm after the first 1x1 conv removes it; see
                                      supernet.model.interchoice)

Ground truth: 32 archs trained stand-alone from scratch, spread evenly over the number of identity
layers (0..7; `sample_archs_by_identities`), because uniform samples (1-2 identities each) differ
by less than the seed noise at this scale. The first 12 are trained again with another seed, which measures how
well the ground truth ranks itself: no supernet can be expected to do better. Every supernet ranks
the same archs (BN recalibrated per arch, as in search); per arm we report Kendall tau over seeds
(mean ± std, min..max) against validation and test accuracy, Spearman, top-k overlap, the
improvement metric at n = 10, the self-consistency between the arm's seeds (mean pairwise Kendall
tau), and SCARLET's feature similarity of the `id` candidate to the other candidates of the first
shape-keeping layer.

Fair sampling trains m = 7 paths per step. By default (`--fair-budget compute`) a fair supernet
gets 1/7 of the steps per epoch (train.max_steps_per_epoch), so all arms cost the same number of
forward/backward passes; `--fair-budget epochs` gives it the same number of steps instead (7x cost).

Everything lands in --out (default runs/ranking-experiment[-quick]) and the script is resumable:
finished stand-alone archs, supernets (done.json) and rankings (rank.json) are skipped, and an
interrupted training resumes from its last checkpoint. Supernets are trained base arms first,
seed-major, so a run cut short can be summarised with `--seeds N` for the seeds it finished.

Cost on 2 CPU cores (torch 2 threads): a stand-alone arch ~20-45 s (fewer identities take longer),
a supernet (20 epochs, 1,560 steps) ~3.6 min, ranking ~1 s per arch and supernet: about 2 h in all.
`--quick` shrinks everything to a few minutes as an end-to-end check (its numbers are noise:
nothing is trained beyond chance).

    PYTHONPATH=src python benchmarks/ranking_experiment.py --quick
    PYTHONPATH=src python benchmarks/ranking_experiment.py            # hours; re-run to resume
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from supernet.analysis import metrics as M  # noqa: E402
from supernet.analysis.groundtruth import read_results, sample_archs_by_identities
from supernet.config.schema import Config, load_config  # noqa: E402
from supernet.core.io import atomic_write_text  # noqa: E402
from supernet.jobs.groundtruth import run_groundtruth
from supernet.jobs.rank import rank_supernets
from supernet.jobs.similarity import run_similarity
from supernet.jobs.train import train_supernet
from supernet.runs.build import build_space, load_data
from supernet.space import Arch, SearchSpace  # noqa: E402

SPACE = "{width: 0.25, head_channels: 32, layers_per_stage: [1,2,1,2,1,1], stem_stride: 2, identity_in: all}"
SIZES = {
    # full: 10,000 training images, 2,000 validation images (ranking and ground-truth val accuracy)
    "full": dict(
        train_limit=12000,
        val_size=2000,
        supernet_epochs=20,
        standalone_epochs=4,
        archs=32,
        seeds=3,
        recal_batches=8,
        checkpoint_every=100,
        gt_repeat=12,
    ),
    "quick": dict(
        train_limit=1500,
        val_size=500,
        supernet_epochs=1,
        standalone_epochs=1,
        archs=6,
        seeds=2,
        recal_batches=2,
        checkpoint_every=0,
        gt_repeat=3,
    ),
    # smoke: does it still run end to end (seconds; `tests/core/test_benchmarks_smoke.py`)
    "smoke": dict(
        train_limit=200,
        val_size=64,
        supernet_epochs=1,
        standalone_epochs=1,
        archs=2,
        seeds=1,
        recal_batches=1,
        checkpoint_every=0,
        gt_repeat=2,
        arm_count=1,  # the first arm only
    ),
}


def base_overrides(size: dict) -> list[str]:
    root = [f"data.root={size['data_root']}"] if size.get("data_root") else []
    return root + [
        "data.name=fashion-mnist",
        f"data.train_limit={size['train_limit']}",
        f"data.val_size={size['val_size']}",
        "space.name=scarlet-s1",
        "space.preset=fashion-mnist",
        f"space.options={SPACE}",
        f"train.epochs={size['supernet_epochs']}",
        "train.batch_size=128",
        "train.lr=0.1",
        "train.progress=false",
        f"train.checkpoint_every_steps={size['checkpoint_every']}",
        f"eval.recal_batches={size['recal_batches']}",
        "eval.recal_batch_size=128",
        "eval.val_batch_size=500",
        f"standalone.epochs={size['standalone_epochs']}",
        "standalone.batch_size=128",
        "standalone.lr=0.05",
        "standalone.progress=false",
    ]


def arms() -> list[tuple[str, str, str]]:
    out = []
    for interchoice in ("none", "bias"):
        for identity in ("skip", "els"):
            for sampler in ("uniform", "fair"):
                out.append((identity, sampler, interchoice))
    return out


def arm_name(arm: tuple[str, str, str]) -> str:
    return "-".join(arm)


def supernet_config(size: dict, arm: tuple[str, str, str], seed: int, fair_budget: str) -> Config:
    identity, sampler, interchoice = arm
    extra = [f"supernet.identity={identity}", f"train.sampler={sampler}", f"train.seed={seed}"]
    if interchoice != "none":  # the paper's input placement is inert in this space (see module docstring)
        extra += [f"supernet.interchoice={interchoice}", "supernet.interchoice_bias_at=pre_act"]
    cfg = load_config(None, base_overrides(size) + extra)
    if sampler == "fair" and fair_budget == "compute":
        steps = (size["train_limit"] - size["val_size"]) // cfg.train.batch_size
        m = max(len(layer.choices) for layer in build_space(cfg, load_data(cfg)).layers)
        cfg.train.max_steps_per_epoch = max(1, math.ceil(steps / m))
    return cfg


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def groundtruth_phase(size: dict, out: Path) -> tuple[dict, SearchSpace, list[Arch]]:
    cfg = load_config(None, base_overrides(size))
    space = build_space(cfg, load_data(cfg))
    archs = sample_archs_by_identities(space, size["archs"], seed=0)
    gt = run_groundtruth(cfg, out / "groundtruth", archs)
    log(f"ground truth: {gt['rows']} archs ({len(gt['trained'])} trained now)")
    return gt, space, archs


def repeat_phase(size: dict, out: Path, archs: list[Arch]) -> dict:
    """The first archs trained again with another seed: how reproducible is the ground truth itself?"""
    n = size["gt_repeat"]
    if n < 2:
        return {}
    cfg = load_config(None, base_overrides(size) + ["standalone.seed=1"])  # same data split, other init and order
    run_groundtruth(cfg, out / "groundtruth-seed1", archs[:n])
    first = {r["arch"]: r for r in read_results(out / "groundtruth")}
    second = read_results(out / "groundtruth-seed1")
    pairs = [(first[r["arch"]], r) for r in second if r["arch"] in first]
    result = {"archs": len(pairs)}
    for column in ("accuracy", "test_accuracy"):
        a, b = [x[column] for x, _ in pairs], [y[column] for _, y in pairs]
        result[column] = {**M.correlations(a, b), "mean_abs_diff": statistics.fmean(abs(x - y) for x, y in zip(a, b))}
    atomic_write_text(out / "groundtruth-seed1" / "reproducibility.json", json.dumps(M.json_safe(result), indent=1))
    return result


def supernet_phase(size: dict, out: Path, fair_budget: str) -> None:
    """Every arm's supernets: the `none` arms first, seed-major within each interchoice setting, so an
    interrupted run has the four base arms at equal seed counts."""
    order = sorted(
        ((arm[2] != "none", seed, arm) for arm in arms()[: size.get("arm_count")] for seed in range(size["seeds"])),
        key=lambda t: t[:2],
    )
    for _, seed, arm in order:
        run_dir = out / "supernets" / f"{arm_name(arm)}-s{seed}"
        if (run_dir / "done.json").is_file():
            continue
        t = time.time()
        trained = train_supernet(supernet_config(size, arm, seed, fair_budget), run_dir, resume=True)
        last = trained["epochs"][-1] if trained["epochs"] else {}
        atomic_write_text(run_dir / "done.json", json.dumps({"seconds": time.time() - t, "last_epoch": last}))
        log(
            f"supernet {arm_name(arm)} seed {seed}: {time.time() - t:.0f}s, last epoch path acc "
            f"{last.get('acc_mean', float('nan')):.3f}"
        )


def rank_phase(size: dict, out: Path, space: SearchSpace, fair_budget: str) -> dict:
    results = {}
    gt_csv = out / "groundtruth" / "groundtruth.csv"
    layer = next(i for i, spec in enumerate(space.layers) if "id" in spec.choices and spec.keeps_shape)
    for arm in arms()[: size.get("arm_count")]:
        name = arm_name(arm)
        runs = [out / "supernets" / f"{name}-s{seed}" for seed in range(size["seeds"])]
        runs = [r for r in runs if (r / "done.json").is_file()]  # --seeds N ranks what an interrupted run has
        if not runs:
            continue
        cfg = supernet_config(size, arm, 0, fair_budget)
        rank_dir = out / "rank" / name
        if not _same_runs(rank_dir / "rank.json", runs):
            rank_supernets(cfg, runs, gt_csv, rank_dir)
        sim_dir = out / "similarity" / name
        if not (sim_dir / "similarity.json").is_file():
            run_similarity(cfg, runs[0], layer, sim_dir, batch_size=128)
        rank = json.loads((rank_dir / "rank.json").read_text())
        sim = json.loads((sim_dir / "similarity.json").read_text())
        results[name] = {**summarise(rank, sim), "kendall_top_half": _stats(top_half_kendall(rank_dir))}
        log(f"ranked {name}: Kendall tau {format_row(name, results[name])}")
    return results


def top_half_kendall(rank_dir: Path) -> list[float]:
    """Per supernet, Kendall tau over the archs whose ground truth is above the median: the ranking
    among the good archs, where a search decides (the full tau is helped by the easy, broken ones)."""
    with open(rank_dir / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    median = statistics.median(float(r["accuracy"]) for r in rows)
    top = [r for r in rows if float(r["accuracy"]) > median]
    preds = [k for k in rows[0] if k.startswith("pred_")]
    return [M.kendall_tau([float(r[k]) for r in top], [float(r["accuracy"]) for r in top]) for k in preds]


def _same_runs(rank_json: Path, runs: list[Path]) -> bool:
    """rank.json exists and ranked exactly these supernets (a re-run with more seeds re-ranks)."""
    try:
        ranked = [s["path"] for s in json.loads(rank_json.read_text())["supernets"]]
    except (OSError, ValueError, KeyError):
        return False
    return [Path(r).resolve() for r in ranked] == [r.resolve() for r in runs]  # --out may be given either way


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: an end-to-end check in a few minutes")
    p.add_argument("--smoke", action="store_true", help="tinier sizes: does it still run (seconds)")
    p.add_argument("--out", help="output folder (default runs/ranking-experiment[-quick])")
    p.add_argument("--data-root", help="Fashion-MNIST folder (default: the toolkit's default location)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--fair-budget", choices=("compute", "epochs"), default="compute")
    p.add_argument("--archs", type=int, help="ground-truth archs (default 32; quick 6)")
    p.add_argument("--seeds", type=int, help="seeds per arm (default 3; quick 2)")
    p.add_argument("--gt-repeat", type=int, help="ground-truth archs trained again with seed 1 (default 12; quick 3)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    size = dict(SIZES["smoke" if args.smoke else "quick" if args.quick else "full"])
    for key in ("archs", "seeds", "gt_repeat"):
        size[key] = getattr(args, key) if getattr(args, key) is not None else size[key]
    size["data_root"] = args.data_root
    suffix = "-smoke" if args.smoke else "-quick" if args.quick else ""
    out = Path(args.out or ROOT / "runs" / f"ranking-experiment{suffix}")
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    gt, space, archs = groundtruth_phase(size, out)
    repeat = repeat_phase(size, out, archs)
    supernet_phase(size, out, args.fair_budget)
    results = rank_phase(size, out, space, args.fair_budget)
    table = format_table(results, gt["rows"], size, repeat)
    atomic_write_text(
        out / "summary.json",
        json.dumps(
            M.json_safe(
                {
                    "sizes": size,
                    "fair_budget": args.fair_budget,
                    "groundtruth_spread": _spread(out),
                    "groundtruth_reproducibility": repeat,
                    "arms": results,
                }
            ),
            indent=1,
        ),
    )
    atomic_write_text(out / "summary.md", table + "\n")
    print(table)
    log(f"done in {time.time() - start:.0f}s; results in {out}")
    return 0


def _spread(out: Path) -> dict:
    rows = read_results(out / "groundtruth")
    return {column: _stats([r[column] for r in rows]) for column in ("accuracy", "test_accuracy")}


def _stats(values: list[float | None]) -> dict[str, float]:
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return {"mean": float("nan"), "std": float("nan"), "min": float("nan"), "max": float("nan")}
    return {
        "mean": statistics.fmean(v),
        "std": statistics.stdev(v) if len(v) > 1 else 0.0,
        "min": min(v),
        "max": max(v),
    }


def summarise(rank: dict, sim: dict) -> dict:
    s = rank["supernets"]
    sc = rank.get("self_consistency", {}).get("mean", {})
    ops = sim["ops"]
    return {
        "seeds": len(s),
        "kendall": _stats([x["kendall"] for x in s]),
        "spearman": _stats([x["spearman"] for x in s]),
        "topk": _stats([x["topk_overlap"] for x in s]),
        "improvement": _stats([x["improvement"] for x in s]),
        "kendall_test": _stats([x.get("vs_test", {}).get("kendall") for x in s]),
        "self_kendall": sc.get("kendall"),
        "id_similarity": sim["mean_similarity_to_others"][ops.index("id")] if "id" in ops else None,
    }


def _f(v: float | None, spec: str = ".3f") -> str:
    return "nan" if v is None or v != v else format(v, spec)


def format_row(name: str, r: dict) -> str:
    k = r["kendall"]
    return (
        f"{_f(k['mean'])} ± {_f(k['std'])} [{_f(k['min'])}, {_f(k['max'])}]  spearman {_f(r['spearman']['mean'])}  "
        f"top-k {_f(r['topk']['mean'], '.2f')}  improv@10 {_f(r['improvement']['mean'])}  "
        f"self-KT {_f(r['self_kendall'])}  sim(id) {_f(r['id_similarity'])}"
    )


def format_table(results: dict, n_archs: int, size: dict, repeat: dict) -> str:
    lines = [
        f"Kendall tau vs stand-alone ground truth ({n_archs} archs; {size['seeds']} seeds per arm; "
        f"mean ± std [min, max]; KT(test): vs test accuracy; KT(top½): among the archs above the median; means)",
        f"{'identity-sampler-interchoice':<30} {'Kendall tau':<30} {'KT(test)':>8} {'KT(top½)':>8} "
        f"{'Spearman':>8} "
        f"{'top-k':>6} {'improv@10':>9} {'self-KT':>8} {'sim(id)':>8}",
    ]
    for name, r in results.items():
        k = r["kendall"]
        tau = f"{_f(k['mean'])} ± {_f(k['std'])} [{_f(k['min'])}, {_f(k['max'])}]"
        lines.append(
            f"{name:<30} {tau:<30} {_f(r['kendall_test']['mean']):>8} "
            f"{_f(r['kendall_top_half']['mean']):>8} {_f(r['spearman']['mean']):>8} "
            f"{_f(r['topk']['mean'], '.2f'):>6} {_f(r['improvement']['mean']):>9} "
            f"{_f(r['self_kendall']):>8} {_f(r['id_similarity']):>8}"
        )
    if repeat:
        lines.append(
            f"ground truth vs itself (seed 0 vs seed 1, {repeat['archs']} archs): Kendall tau "
            f"{_f(repeat['accuracy']['kendall'])} (val), {_f(repeat['test_accuracy']['kendall'])} (test); "
            f"mean |difference| {_f(repeat['accuracy']['mean_abs_diff'], '.4f')} (val)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
