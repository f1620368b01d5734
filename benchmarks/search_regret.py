"""Search regret on NAS-Bench-Macro: what a user gets from `supernet search` on a trained supernet.

For MACs budgets at percentiles of the space (default 25, 50, 75, 100; MACs of all 6,561 archs from the
cost table `search --max-macs` uses), run `supernet search` (evolution, default settings, the supernet
run's own config) and look up the benchmark accuracy of the arch it returns. Beside it, in accuracy
points below the best arch inside the budget (regret):

- deepest: the arch with the most non-identity layers inside the budget (ties: the most MACs);
- largest-MACs: the arch with the most MACs inside the budget (ties: the deepest);
- random: the mean accuracy of the archs inside the budget (a random pick's expected regret).

Also Kendall tau, over every arch the searches evaluated, between the supernet's accuracy and the
benchmark's: overall, within each depth group (pair-weighted mean; what depth cannot see) and per depth.
The searches share the supernet run's evaluation cache, so later budgets reuse earlier evaluations.

    PYTHONPATH=src python benchmarks/search_regret.py --supernet RUN --out runs/regret [--set eval.val_limit=1000]
    PYTHONPATH=src python benchmarks/search_regret.py --smoke --out DIR   # a tiny supernet trained here (seconds)
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from _smoke import benchmark_file, smoke_macro_supernet  # noqa: E402

from supernet.analysis import metrics as M
from supernet.analysis.benchmark import BenchmarkEvaluator, load_benchmark
from supernet.core.io import atomic_write_text
from supernet.cost import CostTable
from supernet.model.protocol import SupernetModel
from supernet.runs.load import default_config, load_supernet
from supernet.space import Arch, SearchSpace

BENCH_FILE = str(ROOT.parent / "shared" / "data" / "nas-bench-macro" / "nas-bench-macro_cifar10.json")


SMOKE_SEARCH = ["search.options={population: 4, iterations: 1, topk: 2}"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def percentile_budgets(macs: dict[Arch, int], percentiles: list[float]) -> list[int]:
    """The MACs budget at each percentile of the archs' MACs (the lower value: some arch sits exactly on it)."""
    values = np.array(sorted(macs.values()))
    return [int(np.percentile(values, pct, method="lower")) for pct in percentiles]


def within(archs: list[Arch], macs: dict[Arch, int], budget: int) -> list[Arch]:
    """The archs inside the MACs `budget`."""
    return [a for a in archs if macs[a] <= budget]


def deepest_pick(inside: list[Arch], macs: dict[Arch, int]) -> Arch:
    """The zero-cost pick to beat: the most non-identity layers, ties broken by the most MACs."""
    return max(inside, key=lambda a: (M.depth(a.ops), macs[a]))


def picks(bench, archs: list[Arch], macs: dict[Arch, int], budget: int) -> dict[str, float]:
    """Benchmark accuracy (%) of the best arch inside `budget` and of the zero-cost picks."""
    inside = within(archs, macs, budget)
    acc = {a: 100 * bench.entries[a].mean for a in inside}
    depth = {a: M.depth(a.ops) for a in inside}
    return {
        "best": max(acc.values()),
        "deepest": acc[deepest_pick(inside, macs)],
        "largest-macs": acc[max(inside, key=lambda a: (macs[a], depth[a]))],
        "random": statistics.fmean(acc.values()),
        "archs_inside": len(inside),
    }


def one_run_picks(bench, archs: list[Arch], macs: dict[Arch, int], budget: int) -> list[dict[str, float]]:
    """The benchmark's own resolution at the top of a budget: for each of its runs, the arch that run puts first
    inside `budget` (a perfect ranker with one training's noise), and the deepest pick, each judged on the mean
    of the other runs (%): where even this pick does not beat the deepest one, no supernet can be asked to."""
    inside = within(archs, macs, budget)
    deepest = deepest_pick(inside, macs)
    out = []
    for run in range(bench.num_runs):
        others = {a: 100 * statistics.fmean(v for i, v in enumerate(bench.entries[a].runs) if i != run) for a in inside}
        best = max(others.values())
        pick = max(inside, key=lambda a: bench.entries[a].runs[run])
        out.append({"run": run + 1, "pick": best - others[pick], "deepest": best - others[deepest]})
    return out


def place(bench, archs: list[Arch], macs: dict[Arch, int], budget: int, accuracy: float) -> int | None:
    """1 + how many archs inside `budget` beat `accuracy` (%): the pick's place in the benchmark's order
    (None for no pick: every arch of the search's top-k withheld)."""
    if math.isnan(accuracy):
        return None
    return 1 + sum(100 * bench.entries[a].mean > accuracy for a in within(archs, macs, budget))


def search(supernet: Path, out: Path, budget: int, overrides: list[str]) -> dict:
    from supernet.jobs.search import search_supernet

    run_dir = out / f"search-{budget}"
    result_path = run_dir / "result.json"
    if not result_path.is_file():
        cfg = default_config(supernet, None, [*overrides, f"search.max_macs={budget}", "search.progress=false"])
        search_supernet(cfg, supernet, run_dir, resume=(run_dir / "journal.sqlite").is_file())
    return json.loads(result_path.read_text())


def depth_taus(evaluated: dict[Arch, float], lookup: BenchmarkEvaluator) -> dict[str, object]:
    """Taus over every arch the searches evaluated; an arch the benchmark file lacks (an identity moved inside
    a stage: the benchmark trained one spelling of each network) gets its network's accuracy (issue 31.4);
    a network the file lacks altogether (the shared copy withholds 50) is left out and counted."""
    known = {a: lookup.lookup(a) for a in evaluated}
    archs = sorted(a for a, v in known.items() if v is not None)
    pred = [evaluated[a] for a in archs]
    true = [known[a] for a in archs]
    depths = [M.depth(a.ops) for a in archs]
    per_depth = {}
    for d in sorted(set(depths)):
        members = [i for i, x in enumerate(depths) if x == d]
        per_depth[d] = (len(members), M.kendall_tau([pred[i] for i in members], [true[i] for i in members]))
    return {
        "archs": len(archs),
        "withheld": len(known) - len(archs),
        "kendall": M.kendall_tau(pred, true),
        "kendall_within_depth": M.kendall_within_groups(pred, true, depths),
        "depth_only_kendall": M.kendall_tau(depths, true),
        "per_depth": per_depth,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--supernet", help="a trained supernet run directory (required unless --smoke)")
    p.add_argument("--out", required=True)
    p.add_argument("--benchmark-file", default=BENCH_FILE)
    p.add_argument("--percentiles", default="25,50,75,100")
    p.add_argument("--set", action="append", default=[], help="config override for the searches (section.field=v)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--smoke", action="store_true", help="train a tiny supernet here, one small search (seconds)")
    p.add_argument(
        "--top",
        type=int,
        default=0,
        metavar="K",
        help="also score, per budget, the benchmark's K best archs inside it, the deepest pick and the search's "
        "top 10, at the run's own evaluation settings (not --set's), by loss and by accuracy: how the supernet "
        "orders the top of a budget",
    )
    args = p.parse_args()
    if not args.supernet and not args.smoke:
        p.error("--supernet is required (or --smoke)")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        args.supernet = args.supernet or str(smoke_macro_supernet(out / "supernet"))
        args.percentiles, args.set, args.top = "100", [*SMOKE_SEARCH, *args.set], args.top or 2
    supernet = Path(args.supernet)
    net, _ = load_supernet(supernet)
    bench = load_benchmark("nas-bench-macro", benchmark_file(args.benchmark_file, args.smoke, out), net.space)
    lookup = BenchmarkEvaluator(bench, net.space)
    table = CostTable.build(net.space, net.options.identity)
    archs = sorted(bench.entries)
    macs = {a: int(table.value(a, "macs")) for a in archs}
    percentiles = [float(x) for x in args.percentiles.split(",")]
    rows, evaluated, results = [], {}, {}
    for pct, budget in zip(percentiles, percentile_budgets(macs, percentiles), strict=True):
        log(f"p{pct:g}: searching under {budget / 1e6:.2f}M MACs")
        result = results[pct] = search(supernet, out, budget, args.set)
        for row in result.get("history", []):
            evaluated[net.space.parse_arch(row["arch"])] = row["metrics"]["accuracy"]
        rows.append(search_row(result, net.space, lookup, pct, budget))
        rows[-1].update(picks(bench, archs, macs, budget))
        rows[-1]["places"] = {k: place(bench, archs, macs, budget, rows[-1][k]) for k in ("search", "deepest")}
        rows[-1]["one_run"] = one_run_picks(bench, archs, macs, budget) if bench.num_runs > 1 else []
        log(f"p{pct:g}: search picked {rows[-1]['arch']} ({rows[-1]['search']:.2f}%, best {rows[-1]['best']:.2f}%)")
    taus = depth_taus(evaluated, lookup)
    report = render(rows, taus)
    top = top_of_budget(supernet, net, lookup, rows, results, archs, macs, args.top) if args.top else []
    report += "\n" + render_top(top) if top else ""
    atomic_write_text(out / "regret.json", json.dumps(M.json_safe({"rows": rows, "taus": taus, "top": top}), indent=1))
    atomic_write_text(out / "regret.md", report)
    print(report)


def search_row(result: dict, space: SearchSpace, lookup: BenchmarkEvaluator, pct: float, budget: int) -> dict:
    """The search's pick and its benchmark accuracy (%): the best-scored arch whose network the benchmark
    file holds (the shared copy withholds 50 networks; `skipped` counts better-scored picks it lacks)."""
    ranked = [row["arch"] for row in result.get("topk", [])]
    if result["best"] not in ranked:
        ranked.insert(0, result["best"])
    for skipped, text in enumerate(ranked):
        value = lookup.lookup(space.parse_arch(text))
        if value is not None:
            return {"percentile": pct, "budget": budget, "search": 100 * value, "arch": text, "skipped": skipped}
    return {"percentile": pct, "budget": budget, "search": float("nan"), "arch": result["best"], "skipped": len(ranked)}


def top_candidates(
    result: dict,
    space: SearchSpace,
    lookup: BenchmarkEvaluator,
    archs: list[Arch],
    macs: dict[Arch, int],
    budget: int,
    k: int,
) -> tuple[list[Arch], Arch]:
    """The benchmark's `k` best archs inside `budget`, its deepest pick and the search's top 10 (those the
    benchmark file holds), each once; and the deepest pick."""
    inside = within(archs, macs, budget)
    best = sorted(inside, key=lambda a: -lookup.lookup(a))[:k]
    deepest = deepest_pick(inside, macs)
    found = [space.parse_arch(row["arch"]) for row in result.get("topk", [])[:10]]
    return list(dict.fromkeys([*best, deepest, *(a for a in found if lookup.lookup(a) is not None)])), deepest


def top_of_budget(
    supernet: Path,
    net: SupernetModel,
    lookup: BenchmarkEvaluator,
    rows: list[dict],
    results: dict[float, dict],
    archs: list[Arch],
    macs: dict[Arch, int],
    k: int,
) -> list[dict]:
    """Per budget and score (loss, accuracy): Kendall tau over `top_candidates`, the benchmark accuracy of the
    candidate the supernet scores highest, and the deepest pick's place in the supernet's order."""
    from supernet.runs.build import build_evaluator, load_data

    out = []
    splits = load_data(default_config(supernet, None, []))
    for metric in ("loss", "accuracy"):
        evaluator = build_evaluator(default_config(supernet, None, [f"eval.metric={metric}"]), net, splits)
        for row in rows:
            budget = row["budget"]
            cand, deepest_arch = top_candidates(results[row["percentile"]], net.space, lookup, archs, macs, budget, k)
            pred = [float(v) for v in evaluator.evaluate_many(cand)]
            true = [100 * lookup.lookup(a) for a in cand]
            deepest = cand.index(deepest_arch)
            out.append(
                {
                    "percentile": row["percentile"],
                    "metric": metric,
                    "archs": len(cand),
                    "kendall": M.kendall_tau(pred, true),
                    "top_scored": true[max(range(len(cand)), key=pred.__getitem__)],
                    "deepest_place": 1 + sum(v > pred[deepest] for v in pred),
                }
            )
            log(f"top of p{row['percentile']:g} by {metric}: tau {out[-1]['kendall']:.3f} over {len(cand)} archs")
    return out


def render_top(top: list[dict]) -> str:
    lines = [
        "Top of each budget (the benchmark's best archs inside it, the deepest pick, the search's top 10), "
        "scored at the run's own settings:",
        "",
        "| budget | score | archs | Kendall tau | benchmark accuracy of the top-scored | deepest pick's place |",
        "|---|---|---|---|---|---|",
    ]
    for t in top:
        lines.append(
            f"| p{t['percentile']:g} | {t['metric']} | {t['archs']} | {t['kendall']:.3f} | {t['top_scored']:.2f} "
            f"| {t['deepest_place']} |"
        )
    return "\n".join(lines) + "\n"


def render(rows: list[dict], taus: dict) -> str:
    lines = [
        "| MACs budget (percentile) | archs inside | best | search (regret) | deepest (regret) "
        "| largest-MACs (regret) | random (regret) | place of search / deepest |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [f"{r[k]:.2f} ({r['best'] - r[k]:.2f})" for k in ("search", "deepest", "largest-macs", "random")]
        cells[0] += f" [{r['skipped']} withheld skipped]" if r.get("skipped") else ""
        cells.append(f"{r['places']['search']} / {r['places']['deepest']}")
        lines.append(
            f"| {r['budget'] / 1e6:.2f}M (p{r['percentile']:g}) | {r['archs_inside']} | {r['best']:.2f} | "
            + " | ".join(cells)
            + " |"
        )
    lines += render_one_run(rows)
    per = ", ".join(f"{d}: {t:.3f} ({n})" for d, (n, t) in taus["per_depth"].items())
    lines += [
        "",
        f"Over the {taus['archs']} archs the searches evaluated ({taus['withheld']} more the benchmark file "
        f"withholds): Kendall tau {taus['kendall']:.3f} "
        f"(depth alone {taus['depth_only_kendall']:.3f}), within depth {taus['kendall_within_depth']:.3f}; "
        f"per depth (archs): {per}",
    ]
    return "\n".join(lines) + "\n"


def render_one_run(rows: list[dict]) -> list[str]:
    """The benchmark's own resolution: regret of one run's pick and of the deepest pick, on the other runs."""
    if not any(r.get("one_run") for r in rows):
        return []
    runs = [o["run"] for o in rows[0]["one_run"]]
    lines = [
        "",
        "One benchmark run's pick (a perfect ranker with one training's noise) against the deepest pick, both "
        "judged on the mean of the other runs: regret of the pick / of the deepest",
        "",
        "| MACs budget | " + " | ".join(f"run {r}" for r in runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    for r in rows:
        cells = [f"{o['pick']:.2f} / {o['deepest']:.2f}" for o in r.get("one_run", [])]
        lines.append(f"| p{r['percentile']:g} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    main()
