"""One self-contained HTML page for a run directory (figures embedded as base64 PNG data URIs).

Works on a pipeline run (supernet/, search/, export/, standalone/ sub-folders) and on the run
directory of any single command: it looks for the files the commands write, in the folder and
its sub-folders (per-arch ground-truth runs and checkpoints are skipped), and shows what it finds:

    config.yaml      the config (the top-most one)
    report.md        the pipeline's text summary
    metrics.jsonl    training curves: per-step loss/accuracy, per-epoch mean ± std of path accuracy
    result.json      search: best, top-k, best accuracy per generation, Pareto plot (accuracy vs
                     MACs), op-frequency heat map (layer x op among the top-k / Pareto archs);
                     stand-alone training: val/test accuracy
    rank.json        ranking metrics and the ranking figures
    similarity.json  the feature-similarity heat map
    groundtruth.csv  a summary of the ground-truth table
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from supernet.errors import ConfigError
from supernet.io import atomic_write_text

SKIP_DIRS = {"archs", "checkpoints"}
PIPELINE_ORDER = ("supernet", "search", "export", "standalone")
REPORT_NAME = "report.html"


# -- helpers -----------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fig_uri(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    _plt().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _file_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _img(uri: str, alt: str) -> str:
    return f'<figure><img src="{uri}" alt="{html.escape(alt)}"><figcaption>{html.escape(alt)}</figcaption></figure>'


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "nan" if v != v else f"{v:.4g}"
        return html.escape("" if v is None else str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _folders(root: Path, depth: int = 3) -> Iterator[Path]:
    yield root
    if depth == 0:
        return
    for child in sorted((p for p in root.iterdir() if p.is_dir()), key=_folder_order):
        if child.name in SKIP_DIRS or child.name.startswith("."):
            continue
        yield from _folders(child, depth - 1)


def _folder_order(path: Path) -> tuple[int, str]:
    """Pipeline stages in their order, then everything else alphabetically."""
    return (PIPELINE_ORDER.index(path.name) if path.name in PIPELINE_ORDER else len(PIPELINE_ORDER), path.name)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# -- sections ------------------------------------------------------------------------------------------
def training_section(path: Path) -> str:
    """Per-step loss and accuracy, per-epoch mean ± std of the sampled paths' accuracy."""
    steps, epochs = [], []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line torn by a kill
        (epochs if row.get("type") == "epoch" else steps).append(row)
    if not steps and not epochs:
        return "<p>no training rows logged yet</p>"
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    x = [r.get("global_step", i + 1) for i, r in enumerate(steps)]
    axes[0].plot(x, [r["loss"] for r in steps], lw=0.8)
    axes[0].set(title="training loss per step", xlabel="step", ylabel="loss")
    axes[1].plot(x, [r["acc"] for r in steps], lw=0.8, c="tab:green")
    axes[1].set(title="training accuracy per step", xlabel="step", ylabel="accuracy")
    if epochs:
        e = [r["epoch"] + 1 for r in epochs]
        axes[2].errorbar(e, [r["acc_mean"] for r in epochs], yerr=[r.get("acc_std", 0) for r in epochs],
                         marker="o", capsize=4)
    axes[2].set(title="per epoch: path accuracy mean ± std", xlabel="epoch", ylabel="accuracy")
    for ax in axes:
        ax.grid(alpha=0.3)
    out = _img(_fig_uri(fig), f"training curves ({path.parent.name or path.parent})")
    if epochs:
        out += _table(["epoch", "loss", "acc mean", "acc std"],
                      [[r["epoch"], r["loss"], r["acc_mean"], r.get("acc_std", 0.0)] for r in epochs])
    return out


def op_frequency(archs: Sequence[str]) -> tuple[list[str], list[str], np.ndarray]:
    """(layer labels, op names, layers x ops matrix of frequencies) over arch strings."""
    split = [a.split(",") for a in archs]
    n_layers = max(len(s) for s in split)
    ops: list[str] = []
    for s in split:
        ops += [o for o in s if o not in ops]
    ops.sort()
    m = np.zeros((n_layers, len(ops)))
    for layer in range(n_layers):
        counts = Counter(s[layer] for s in split if layer < len(s))
        for j, op in enumerate(ops):
            m[layer, j] = counts[op] / len(split)
    return [f"layer {i}" for i in range(n_layers)], ops, m


def _heatmap_uri(matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str,
                 vmin: float = 0, vmax: float = 1) -> str:
    from supernet.analysis.plots import plot_heatmap

    with tempfile.TemporaryDirectory() as tmp:
        path = plot_heatmap(matrix, rows, cols, Path(tmp) / "h.png", title, vmin=vmin, vmax=vmax, cmap="Blues")
        return _file_uri(path)


def search_section(data: dict[str, Any]) -> str:
    from supernet.search.plots import plot_pareto

    parts = []
    best = data.get("best_metrics", {})
    parts.append(_table(["best arch", *best], [[data.get("best"), *best.values()]]))
    info = {k: data[k] for k in ("strategy", "problem", "evaluations", "seconds") if k in data}
    if info:
        parts.append(_table(list(info), [list(info.values())]))
    topk = data.get("topk", [])
    if topk:
        keys = list(topk[0]["metrics"])
        parts.append("<h4>top-k</h4>" + _table(["#", "arch", *keys],
                                               [[i + 1, t["arch"], *[t["metrics"].get(k) for k in keys]]
                                                for i, t in enumerate(topk)]))
    history = data.get("history", [])
    step_key = next((k for k in ("generation", "iteration") if history and k in history[0]), None)
    plt = _plt()
    if history:
        best_by_step: dict[int, float] = {}
        best = float("-inf")
        for i, row in enumerate(history):
            acc = row["metrics"].get("accuracy")
            if acc is not None and row.get("feasible", True):
                best = max(best, acc)
            step = row.get(step_key, i) if step_key else i
            best_by_step[step] = best
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(list(best_by_step), [v if np.isfinite(v) else np.nan for v in best_by_step.values()], marker="o")
        ax.set(title="best accuracy so far", xlabel=step_key or "evaluation", ylabel="supernet accuracy")
        ax.grid(alpha=0.3)
        parts.append(_img(_fig_uri(fig), f"search progress: best accuracy vs {step_key or 'evaluation'}"))
        if any("macs" in r["metrics"] and "accuracy" in r["metrics"] for r in history):
            with tempfile.TemporaryDirectory() as tmp:
                parts.append(_img(_file_uri(plot_pareto(data, Path(tmp) / "p.png")),
                                  "Pareto front: accuracy vs MACs (all evaluated archs)"))
    chosen, label = ((data["pareto"], "Pareto") if data.get("pareto") else (topk, "top-k"))
    archs = [c["arch"] for c in chosen]
    if archs:
        rows, cols, m = op_frequency(archs)
        parts.append(_img(_heatmap_uri(m, rows, cols, f"op frequency among the {len(archs)} {label} archs"),
                          f"op frequency (layer x op) among the {label} archs"))
    return "".join(parts)


def rank_section(data: dict[str, Any], folder: Path) -> str:
    rows = [[s["label"], s.get("kendall"), s.get("pearson"), s.get("spearman"), s.get("topk_overlap"),
             s.get("improvement")] for s in data.get("supernets", [])]
    rows = [[v if v is not None else float("nan") for v in r] for r in rows]
    parts = [f"<p>{data.get('num_archs')} ground-truth archs ({html.escape(str(data.get('groundtruth')))}); "
             f"top-k with k={data.get('k')}; improvement at n={data.get('improvement_at')}</p>",
             _table(["supernet", "Kendall tau", "Pearson", "Spearman", "top-k overlap", "improvement"], rows)]
    sc = data.get("self_consistency")
    if sc:
        parts.append("<p>self-consistency (mean pairwise): " + html.escape(", ".join(
            f"{k} {v:.3f}" if v is not None else f"{k} nan" for k, v in sc["mean"].items())) + "</p>")
    for name in data.get("figures", []):
        if (folder / name).is_file():
            parts.append(_img(_file_uri(folder / name), name))
    return "".join(parts)


def similarity_section(data: dict[str, Any], folder: Path) -> str:
    parts = [f"<p>layer {data.get('layer')}; input from path {html.escape(str(data.get('prefix_arch')))}</p>",
             _table(["op", "mean cosine similarity to the others"],
                    list(zip(data.get("ops", []), data.get("mean_similarity_to_others", []))))]
    fig = folder / data.get("figure", "similarity.png")
    if fig.is_file():
        parts.append(_img(_file_uri(fig), f"feature similarity, layer {data.get('layer')}"))
    return "".join(parts)


def groundtruth_section(path: Path) -> str:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return "<p>no finished archs yet</p>"
    val = np.array([float(r["accuracy"]) for r in rows])
    test = np.array([float(r["test_accuracy"]) for r in rows if r.get("test_accuracy")])
    stats = [["val", val.min(), val.mean(), val.max()]]
    if len(test):
        stats.append(["test", test.min(), test.mean(), test.max()])
    best = max(rows, key=lambda r: float(r["accuracy"]))
    return (f"<p>{len(rows)} archs trained stand-alone; best (val) {html.escape(best['arch'])}</p>"
            + _table(["accuracy", "min", "mean", "max"], stats))


# -- the page ----------------------------------------------------------------------------------------------
STYLE = """body{font-family:sans-serif;max-width:1300px;margin:1em auto;padding:0 1em;color:#222}
h2{border-bottom:1px solid #ccc;padding-top:.5em}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px;text-align:left}th{background:#f0f0f0}
pre{background:#f6f6f6;padding:.5em;overflow:auto;font-size:12px;max-height:30em}
figure{display:inline-block;margin:.5em}img{max-width:100%}figcaption{font-size:12px;color:#555}"""


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write `run_dir`/report.html (or `out`) and return its path."""
    root = Path(run_dir)
    if not root.is_dir():
        raise ConfigError(f"run directory {root} does not exist")
    sections: list[tuple[str, str]] = []
    config = next((f / "config.yaml" for f in _folders(root) if (f / "config.yaml").is_file()), None)
    if config is not None:
        sections.append((f"config ({config.relative_to(root)})", _pre(config.read_text())))
    for folder in _folders(root):
        rel = str(folder.relative_to(root)) if folder != root else "."
        where = f" ({rel})" if rel != "." else ""
        if (folder / "report.md").is_file():
            sections.append((f"summary{where}", _pre((folder / "report.md").read_text())))
        if (folder / "metrics.jsonl").is_file():
            sections.append((f"training{where}", training_section(folder / "metrics.jsonl")))
        result = _read_json(folder / "result.json") if (folder / "result.json").is_file() else None
        if isinstance(result, dict) and "history" in result:
            sections.append((f"search{where}", search_section(result)))
        elif isinstance(result, dict) and "val_acc" in result:
            sections.append((f"stand-alone result{where}", _table(
                ["arch", "val acc", "test acc", "seconds"],
                [[result.get("arch"), result["val_acc"], result.get("test_acc"), result.get("seconds")]])))
        if (folder / "model.json").is_file():
            model = _read_json(folder / "model.json") or {}
            files = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
            sections.append((f"export{where}", _table(["arch", "files"], [[model.get("arch"), ", ".join(files)]])))
        if (folder / "groundtruth.csv").is_file():
            sections.append((f"ground truth{where}", groundtruth_section(folder / "groundtruth.csv")))
        rank = _read_json(folder / "rank.json") if (folder / "rank.json").is_file() else None
        if isinstance(rank, dict):
            sections.append((f"ranking{where}", rank_section(rank, folder)))
        sim = _read_json(folder / "similarity.json") if (folder / "similarity.json").is_file() else None
        if isinstance(sim, dict):
            sections.append((f"feature similarity{where}", similarity_section(sim, folder)))
    if not sections:
        raise ConfigError(f"{root} holds nothing to report (no config.yaml, metrics.jsonl, result.json, "
                          f"rank.json, similarity.json or groundtruth.csv)")
    title = f"supernet report: {root.resolve().name}"
    nav = "".join(f'<li><a href="#s{i}">{html.escape(t)}</a></li>' for i, (t, _) in enumerate(sections))
    body = "".join(f'<h2 id="s{i}">{html.escape(t)}</h2>{content}' for i, (t, content) in enumerate(sections))
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1><ul>{nav}</ul>{body}</body></html>\n")
    path = Path(out) if out is not None else root / REPORT_NAME
    atomic_write_text(path, page)
    return path
