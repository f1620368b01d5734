"""How many supernet scores, drawn how, the additive predictor (`search.predictor=additive`) needs on NAS-Bench-Macro.

For each sample design (`search.predictor_design`: depth-balanced, uniform), the supernet scores a pool of
`--pool` archs drawn as the search draws its sample (`predictor_sample`, seed `--seed`: the search's first N
archs are this pool's first N). For each sample size N, the predictor is fitted (ridge `--ridge`, or each of
several: the same subsets for each) to the scores of `--draws` random N-subsets of the pool (the whole pool once
when N is its size), and its exhaustive pick inside each MACs budget (percentiles of the space, as
`search_regret.py`) is looked up in the benchmark: the mean regret (accuracy points below the budget's best) and
the share of draws whose pick beats the deepest arch inside the budget (the zero-cost pick to beat). The row
`first N` is the sample a search of seed `--seed` fits (its strategy then searches the fitted model; the
exhaustive pick is what a perfect strategy returns).

Scores come from and go to the supernet run's evaluation cache (`supernet rank` and `search` share it), so a
pool the predictor searches or an earlier run of this script scored is not scored again. `--scores FILE` reads
them from a dump of that cache (`score_dump.py`) instead: no supernet, seconds, nothing scored. `--pair-ridge R`
adds rows for the `pairs` model (`search.predictor=pairs`): the additive one plus a weight per adjacent layer pair
and pair of choices, ridge R on those (docs/analysis.md, rounds 9-10).

    PYTHONPATH=src python benchmarks/predictor_design.py --supernet RUN --out runs/design [--set eval.val_limit=1000]
    PYTHONPATH=src python benchmarks/predictor_design.py --scores benchmarks/scores/ARM.json --out runs/design
    PYTHONPATH=src python benchmarks/predictor_design.py --smoke --out DIR   # a tiny supernet trained here (seconds)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from _smoke import benchmark_file, smoke_macro_supernet  # noqa: E402
from score_dump import load_dump  # noqa: E402
from search_regret import BENCH_FILE, deepest_pick, percentile_budgets, within  # noqa: E402

from supernet.analysis.benchmark import load_benchmark
from supernet.core.io import atomic_write_text
from supernet.cost import CostTable
from supernet.jobs.rank import predict
from supernet.runs.load import default_config, load_supernet
from supernet.search.predictor import (
    DEFAULT_PAIR_RIDGE,
    DESIGNS,
    AdditivePredictor,
    PairPredictor,
    fit_model,
    one_hot,
    pair_one_hot,
    predictor_sample,
)
from supernet.space import Arch

ScorePool = Callable[[str, list[Arch]], dict[Arch, float]]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Budgets:
    """The benchmark's archs, their one-hot choices, and per MACs budget: the archs inside it (row indices),
    its best accuracy and the deepest pick's regret (accuracy in %)."""

    def __init__(self, bench, space, table: CostTable, percentiles: list[float]) -> None:
        self.archs = sorted(bench.entries)
        self.x = one_hot(space, self.archs)
        self.pairs = pair_one_hot(space, self.archs)
        self.truth = np.array([100 * bench.entries[a].mean for a in self.archs])
        macs = {a: int(table.value(a, "macs")) for a in self.archs}
        self.budgets = percentile_budgets(macs, percentiles)
        self.percentiles = percentiles
        index = {a: i for i, a in enumerate(self.archs)}
        inside = [within(self.archs, macs, b) for b in self.budgets]
        self.inside = [np.array([index[a] for a in archs]) for archs in inside]
        self.best = [float(self.truth[rows].max()) for rows in self.inside]
        self.deepest = [
            best - self.truth[index[deepest_pick(archs, macs)]] for best, archs in zip(self.best, inside, strict=True)
        ]

    def regrets(self, model: MatrixForm) -> list[float]:
        """Regret of the model's exhaustive pick inside each budget."""
        pred = model.predict(self.x, self.pairs)
        return [best - float(self.truth[rows[np.argmax(pred[rows])]]) for best, rows in zip(self.best, self.inside)]


class MatrixForm:
    """A fitted search predictor (`AdditivePredictor`, or `PairPredictor` with its pair weights) as flat weight
    vectors over the one-hot columns (`one_hot`, `pair_one_hot`): the whole benchmark predicted at once."""

    def __init__(self, model: AdditivePredictor | PairPredictor) -> None:
        self.intercept = model.intercept
        self.w = np.concatenate([np.asarray(w) for w in model.weights])
        pairs = model.pair_weights if isinstance(model, PairPredictor) else ()
        self.pair_w = np.concatenate([np.asarray(w) for w in pairs]) if pairs else None

    def predict(self, main: np.ndarray, pairs: np.ndarray) -> np.ndarray:
        out = self.intercept + main @ self.w
        return out if self.pair_w is None else out + pairs @ self.pair_w


def subsets(pool: list[Arch], size: int, draws: int, rng: random.Random) -> list[list[Arch]]:
    """`draws` random `size`-subsets of `pool`, or the pool once when `size` is its size."""
    return [pool] if size >= len(pool) else [rng.sample(pool, size) for _ in range(draws)]


def design_rows(
    budgets: Budgets, space, pool: list[Arch], scores: dict[Arch, float], args: argparse.Namespace, design: str
) -> list[dict]:
    """Per ridge: one row per sample size (random subsets of the pool, the same ones for every ridge) and one for
    the search's own sample (its first N)."""
    rng = random.Random(args.seed)
    samples = []
    for size in [n for n in args.sizes if n <= len(pool)]:
        subs = subsets(pool, size, args.draws, rng)
        samples.append((f"{size} ({len(subs)} draw{'s' if len(subs) > 1 else ''})", subs))
    samples.append((f"first {min(args.samples, len(pool))}", [pool[: args.samples]]))
    rows = []
    for ridge in args.ridge:
        for pair_ridge in [None, *getattr(args, "pair_ridge", [])]:
            for label, subs in samples:
                fits = [fit(space, sub, [scores[a] for a in sub], ridge, pair_ridge) for sub in subs]
                regrets = np.array([budgets.regrets(m) for m in fits])
                rows.append(summary(design, ridge, label, regrets, budgets, pair_ridge))
    return rows


def fit(space, archs: list[Arch], scores: list[float], ridge: float, pair_ridge: float | None) -> MatrixForm:
    """The search's `additive` predictor, or with `pair_ridge` its `pairs` one, in matrix form."""
    if pair_ridge is None:  # the additive model ignores the pair ridge
        return MatrixForm(fit_model("additive", space, archs, scores, ridge, DEFAULT_PAIR_RIDGE))
    return MatrixForm(fit_model("pairs", space, archs, scores, ridge, pair_ridge))


def summary(
    design: str, ridge: float, sample: str, regrets: np.ndarray, budgets: Budgets, pair_ridge: float | None = None
) -> dict:
    beats = regrets < np.array(budgets.deepest) - 1e-9
    return {
        "design": design,
        "ridge": ridge,
        **({} if pair_ridge is None else {"pair_ridge": pair_ridge}),
        "sample": sample,
        "mean_regret": regrets.mean(axis=0).tolist(),
        "share_beating_deepest": beats.mean(axis=0).tolist(),
    }


def render(rows: list[dict], budgets: Budgets) -> str:
    heads = " | ".join(f"p{p:g} {b / 1e6:.2f}M" for p, b in zip(budgets.percentiles, budgets.budgets))
    lines = [
        "Mean regret of the predictor's exhaustive pick (share of draws beating the deepest pick):",
        "",
        f"| design | ridge | sample | {heads} | mean |",
        "|---|---|---|" + "---|" * (len(budgets.budgets) + 1),
        "| deepest pick | - | - | "
        + " | ".join(f"{d:.3f}" for d in budgets.deepest)
        + f" | {np.mean(budgets.deepest):.3f} |",
    ]
    for r in rows:
        cells = [f"{m:.3f} ({s:.2f})" for m, s in zip(r["mean_regret"], r["share_beating_deepest"], strict=True)]
        mean = f"{np.mean(r['mean_regret']):.3f}"
        ridge = f"{r['ridge']:g}" + (f" + pairs {r['pair_ridge']:g}" if "pair_ridge" in r else "")
        lines.append(f"| {r['design']} | {ridge} | {r['sample']} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--supernet", help="a trained supernet run directory (or --scores, or --smoke)")
    p.add_argument("--scores", help="a score dump (score_dump.py) in place of a supernet: nothing is scored")
    p.add_argument("--out", required=True)
    p.add_argument("--benchmark-file", default=BENCH_FILE)
    p.add_argument("--designs", default=",".join(DESIGNS))
    p.add_argument("--pool", type=int, default=300, help="archs the supernet scores per design")
    p.add_argument("--sizes", default="50,100,150,200,300", help="sample sizes the predictor is fitted to")
    p.add_argument("--samples", type=int, default=150, help="the search's sample size (the `first N` row)")
    p.add_argument("--draws", type=int, default=20, help="random subsets per sample size")
    p.add_argument("--ridge", default="1.0", help="the predictor's ridge, or several, comma-separated")
    p.add_argument(
        "--pair-ridge",
        default="",
        help="also fit the additive model plus adjacent-layer pair terms (search.predictor=pairs), at "
        "each of these ridges on the pairs (comma-separated; the main effects keep --ridge)",
    )
    p.add_argument("--seed", type=int, default=0, help="the pool's draw (the search's search.seed)")
    p.add_argument("--percentiles", default="25,50,75,100")
    p.add_argument("--set", action="append", default=[], help="config override for the scoring (section.field=v)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--smoke", action="store_true", help="train a tiny supernet here, a pool of 12 (seconds)")
    args = p.parse_args()
    if args.scores and (args.supernet or args.smoke):
        p.error("--scores stands in for a supernet: drop --supernet and --smoke")
    if args.scores and args.set:
        p.error("--set changes how a supernet scores; a dump's scores are fixed (its `evaluation` says how)")
    if not (args.supernet or args.scores or args.smoke):
        p.error("--supernet or --scores is required (or --smoke)")
    unknown = [d for d in args.designs.split(",") if d not in DESIGNS]
    if unknown:
        p.error(f"--designs: unknown design {unknown[0]}; known: {', '.join(DESIGNS)}")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        args.supernet = args.supernet or str(smoke_macro_supernet(out / "supernet"))
        args.pool, args.sizes, args.samples, args.draws, args.ridge = 12, "6,12", 8, 2, "1,10"
        args.pair_ridge = args.pair_ridge or "10"
    args.sizes = sorted(int(n) for n in args.sizes.split(","))
    args.ridge = [float(r) for r in args.ridge.split(",")]
    args.pair_ridge = [float(r) for r in args.pair_ridge.split(",") if r.strip()]
    if not all(r > 0 for r in [*args.ridge, *args.pair_ridge]):
        p.error("--ridge and --pair-ridge take positive numbers")
    space, identity, score = score_source(p, args)
    bench = load_benchmark("nas-bench-macro", benchmark_file(args.benchmark_file, args.smoke, out), space)
    budgets = Budgets(bench, space, CostTable.build(space, identity), percentiles(args))
    rows = []
    for design in args.designs.split(","):
        pool = predictor_sample(space, args.pool, args.seed, design)
        rows += design_rows(budgets, space, pool, score(design, pool), args, design)
    report = render(rows, budgets)
    atomic_write_text(out / "design.json", json.dumps({"deepest": budgets.deepest, "rows": rows}, indent=1))
    atomic_write_text(out / "design.md", report)
    print(report)


def score_source(p: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[Any, str, ScorePool]:
    """(space, identity, (design, pool) -> arch -> score): the supernet's scores (cached ones read back), or
    a dump's (a pool arch it lacks is a one-line error)."""
    if args.scores:
        try:
            space, identity, dumped = load_dump(Path(args.scores))
        except ValueError as e:
            p.error(f"--scores: {e}")

        def from_dump(design: str, pool: list[Arch]) -> dict[Arch, float]:
            lacking = [a for a in pool if a not in dumped]
            if lacking:
                p.error(
                    f"--scores: {len(lacking)} of the {design} pool's {len(pool)} archs are not in {args.scores} "
                    f"(e.g. {lacking[0].to_string()}); a smaller --pool, or score them with --supernet"
                )
            return {a: dumped[a] for a in pool}

        return space, identity, from_dump
    supernet = Path(args.supernet)
    net, _ = load_supernet(supernet)
    cfg = default_config(supernet, None, args.set)

    def from_supernet(design: str, pool: list[Arch]) -> dict[Arch, float]:
        log(f"{design}: the supernet scores {len(pool)} archs (cached ones are read back)")
        return dict(zip(pool, predict(cfg, supernet, pool), strict=True))

    return net.space, net.options.identity, from_supernet


def percentiles(args: argparse.Namespace) -> list[float]:
    return [float(x) for x in args.percentiles.split(",")]


if __name__ == "__main__":
    main()
