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

Every file is untrusted (SECURITY.md): only regular files inside the run directory are read
(symbolic links and figure names that lead out of it are refused), every value is HTML-escaped,
and a file that is not in the shape a command writes is a one-line error naming it.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from supernet.core.errors import ConfigError
from supernet.core.extras import pyplot
from supernet.core.io import atomic_write_text
from supernet.core.rundir import CHECKPOINTS, CONFIG, METRICS, RESULT

SKIP_DIRS = {"archs", CHECKPOINTS}
PIPELINE_ORDER = ("supernet", "search", "export", "standalone")
REPORT_NAME = "report.html"


# -- helpers -----------------------------------------------------------------------------------------
def _fig_uri(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _file_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def inside(folder: Path, name: Any) -> Path | None:
    """`folder/name` if it is a regular file that stays inside `folder` once resolved (no absolute
    name, no `..`, no symbolic link leading out); else None."""
    if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
        return None
    path = folder / name
    try:
        resolved, base = path.resolve(strict=True), folder.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if path.is_symlink() or not resolved.is_relative_to(base) or not resolved.is_file():
        return None
    return path


def _figure(folder: Path, name: Any, caption: str) -> str:
    """An embedded PNG named by a (untrusted) JSON file, or a note saying why it was left out."""
    path = inside(folder, name)
    if path is None or path.open("rb").read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
        return f"<p>figure {html.escape(repr(name))} left out: not a PNG file inside {html.escape(str(folder))}</p>"
    return _img(_file_uri(path), caption)


def _img(uri: str, alt: str) -> str:
    return f'<figure><img src="{uri}" alt="{html.escape(alt)}"><figcaption>{html.escape(alt)}</figcaption></figure>'


def _escaped(value: Any) -> str:
    return html.escape(str(value))


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "nan" if np.isnan(v) else f"{v:.4g}"
        return html.escape("" if v is None else str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _folders(root: Path, depth: int = 3) -> Iterator[Path]:
    yield root
    if depth == 0:
        return
    for child in sorted((p for p in root.iterdir() if p.is_dir() and not p.is_symlink()), key=_folder_order):
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
    for number, line in enumerate(_text(path).splitlines(), 1):
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line torn by a kill
        if not isinstance(row, dict):
            raise TypeError(f"line {number} is not a JSON object")
        (epochs if row.get("type") == "epoch" else steps).append(row)
    if not steps and not epochs:
        return "<p>no training rows logged yet</p>"
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    x = [r.get("global_step", i + 1) for i, r in enumerate(steps)]
    axes[0].plot(x, [r["loss"] for r in steps], lw=0.8)
    axes[0].set(title="training loss per step", xlabel="step", ylabel="loss")
    axes[1].plot(x, [r["acc"] for r in steps], lw=0.8, c="tab:green")
    axes[1].set(title="training accuracy per step", xlabel="step", ylabel="accuracy")
    if epochs:
        e = [r["epoch"] + 1 for r in epochs]
        axes[2].errorbar(
            e, [r["acc_mean"] for r in epochs], yerr=[r.get("acc_std", 0) for r in epochs], marker="o", capsize=4
        )
    axes[2].set(title="per epoch: path accuracy mean ± std", xlabel="epoch", ylabel="accuracy")
    for ax in axes:
        ax.grid(alpha=0.3)
    out = _img(_fig_uri(fig), f"training curves ({path.parent.name or path.parent})")
    if epochs:
        out += _table(
            ["epoch", "loss", "acc mean", "acc std"],
            [[r["epoch"], r["loss"], r["acc_mean"], r.get("acc_std", 0.0)] for r in epochs],
        )
    return out


def op_frequency(archs: Sequence[str]) -> tuple[list[str], list[str], np.ndarray]:
    """(layer labels, op names, layers x ops matrix of frequencies) over arch strings."""
    split = [a.split(",") for a in archs]
    n_layers = max(len(s) for s in split)
    ops = sorted({op for s in split for op in s})
    m = np.zeros((n_layers, len(ops)))
    for layer in range(n_layers):
        counts = Counter(s[layer] for s in split if layer < len(s))
        for j, op in enumerate(ops):
            m[layer, j] = counts[op] / len(split)
    return [f"layer {i}" for i in range(n_layers)], ops, m


def _heatmap_uri(
    matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str, vmin: float = 0, vmax: float = 1
) -> str:
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
    evaluation = data.get("evaluation")  # the estimator a supernet search scored archs with
    if isinstance(evaluation, dict) and evaluation:
        parts.append(
            "<h4>evaluation settings</h4>" + _table([f"eval.{k}" for k in evaluation], [list(evaluation.values())])
        )
    topk = data.get("topk", [])
    if topk:
        keys = list(topk[0]["metrics"])
        parts.append(
            "<h4>top-k</h4>"
            + _table(
                ["#", "arch", *keys],
                [[i + 1, t["arch"], *[t["metrics"].get(k) for k in keys]] for i, t in enumerate(topk)],
            )
        )
    history = data.get("history", [])
    step_key = next((k for k in ("generation", "iteration") if history and k in history[0]), None)
    plt = pyplot()
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
                parts.append(
                    _img(
                        _file_uri(plot_pareto(data, Path(tmp) / "p.png")),
                        "Pareto front: accuracy vs MACs (all evaluated archs)",
                    )
                )
    chosen, label = (data["pareto"], "Pareto") if data.get("pareto") else (topk, "top-k")
    archs = [c["arch"] for c in chosen]
    if archs:
        rows, cols, m = op_frequency(archs)
        parts.append(
            _img(
                _heatmap_uri(m, rows, cols, f"op frequency among the {len(archs)} {label} archs"),
                f"op frequency (layer x op) among the {label} archs",
            )
        )
    return "".join(parts)


def rank_section(data: dict[str, Any], folder: Path) -> str:
    rows = [
        [s["label"], s.get("kendall"), s.get("pearson"), s.get("spearman"), s.get("topk_overlap"), s.get("improvement")]
        for s in data.get("supernets", [])
    ]
    rows = [[v if v is not None else float("nan") for v in r] for r in rows]
    e = _escaped
    parts = [
        (
            f"<p>{e(data.get('num_archs'))} ground-truth archs ({e(data.get('groundtruth'))}); "
            f"top-k with k={e(data.get('k'))}; improvement at n={e(data.get('improvement_at'))}</p>"
        ),
        _table(["supernet", "Kendall tau", "Pearson", "Spearman", "top-k overlap", "improvement"], rows),
    ]
    sc = data.get("self_consistency")
    if sc:
        parts.append(
            "<p>self-consistency (mean pairwise): "
            + html.escape(", ".join(f"{k} {v:.3f}" if v is not None else f"{k} nan" for k, v in sc["mean"].items()))
            + "</p>"
        )
    for name in data.get("figures", []):
        parts.append(_figure(folder, name, str(name)))
    return "".join(parts)


def similarity_section(data: dict[str, Any], folder: Path) -> str:
    parts = [
        f"<p>layer {_escaped(data.get('layer'))}; input from path {_escaped(data.get('prefix_arch'))}</p>",
        _table(
            ["op", "mean cosine similarity to the others"],
            list(zip(data.get("ops", []), data.get("mean_similarity_to_others", []))),
        ),
    ]
    name = data.get("figure", "similarity.png")
    if name is not None:  # None: written without supernet[plots]
        parts.append(_figure(folder, name, f"feature similarity, layer {data.get('layer')}"))
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
    return f"<p>{len(rows)} archs trained stand-alone; best (val) {html.escape(best['arch'])}</p>" + _table(
        ["accuracy", "min", "mean", "max"], stats
    )


def _folder_sections(folder: Path, where: str) -> list[tuple[str, str]]:
    """The sections of one folder's files; each file is read only if it lies inside the folder."""
    sections = []
    if (md := inside(folder, "report.md")) is not None:
        sections.append((f"summary{where}", _pre(_text(md))))
    if (metrics := inside(folder, METRICS)) is not None:
        sections.append((f"training{where}", _guarded(metrics, training_section, metrics)))
    result = _json_file(folder, RESULT)
    if isinstance(result, dict) and "history" in result:
        sections.append((f"search{where}", _guarded(folder / RESULT, search_section, result)))
    elif isinstance(result, dict) and "val_acc" in result:
        sections.append(
            (
                f"stand-alone result{where}",
                _table(
                    ["arch", "val acc", "test acc", "seconds"],
                    [[result.get("arch"), result["val_acc"], result.get("test_acc"), result.get("seconds")]],
                ),
            )
        )
    model = _json_file(folder, "model.json")
    if model is not None:
        files = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        arch = model.get("arch") if isinstance(model, dict) else None
        sections.append((f"export{where}", _table(["arch", "files"], [[arch, ", ".join(files)]])))
    if (gt := inside(folder, "groundtruth.csv")) is not None:
        sections.append((f"ground truth{where}", _guarded(gt, groundtruth_section, gt)))
    rank = _json_file(folder, "rank.json")
    if isinstance(rank, dict):
        sections.append((f"ranking{where}", _guarded(folder / "rank.json", rank_section, rank, folder)))
    sim = _json_file(folder, "similarity.json")
    if isinstance(sim, dict):
        sections.append(
            (f"feature similarity{where}", _guarded(folder / "similarity.json", similarity_section, sim, folder))
        )
    prune = _json_file(folder, "prune.json")
    if isinstance(prune, dict) and "stages" in prune:
        sections.append((f"progressive pruning{where}", _guarded(folder / "prune.json", prune_section, prune, folder)))
    pruning = _json_file(folder, "pruning.json")
    if isinstance(pruning, dict) and "frequencies" in pruning:
        sections.append(
            (f"op frequencies and pruning{where}", _guarded(folder / "pruning.json", pruning_section, pruning, folder))
        )
    for path in sorted(folder.glob("*latency*.json")):
        table = _json_file(folder, path.name)
        if isinstance(table, dict) and table.get("format") == "supernet.latency-table/1":
            sections.append((f"latency table {path.name}{where}", _guarded(path, latency_section, table)))
    return sections


def prune_section(data: dict[str, Any], folder: Path) -> str:
    """`supernet prune`: space size per stage (figure and table) and the final search's best arch."""
    rows = [
        [row["stage"], row["size"], float(row["log10_size"]), sum(map(len, row.get("pruned", [])))]
        for row in data["stages"]
    ]
    out = _table(["stage", "space size", "log10 size", "ops pruned"], rows)
    if inside(folder, "space-size.png") is not None:
        out += _figure(folder, "space-size.png", "search space size per stage")
    final = data.get("final")
    if isinstance(final, dict):
        metrics = ", ".join(f"{k}={float(v):.4g}" for k, v in final["best_metrics"].items())
        out += f"<p>final search: best {html.escape(str(final['best']))} ({html.escape(metrics)})</p>"
    return out


def pruning_section(data: dict[str, Any], folder: Path) -> str:
    """One pruning step: the op-frequency heat map (PAD-NAS Fig. 3) and the ops dropped per layer."""
    rows = [
        [i, ", ".join(map(str, kept)), ", ".join(map(str, pruned))]
        for i, (kept, pruned) in enumerate(zip(data["kept"], data["pruned"], strict=True))
        if pruned
    ]
    out = (
        f"<p>{int(data['archs_counted'])} archs counted; space size {data['parent_size']:.4g} -> {data['size']:.4g}</p>"
    )
    if inside(folder, "frequencies.png") is not None:
        out += _figure(folder, "frequencies.png", "op frequency per layer (PAD-NAS Fig. 3)")
    return out + (_table(["layer", "kept", "pruned"], rows) if rows else "<p>no op pruned</p>")


def latency_section(table: dict[str, Any]) -> str:
    """Where a latency table was measured and how well it predicts whole models (`--validate`)."""
    meta = table.get("meta") or {}
    versions = ", ".join(f"{k} {v}" for k, v in (meta.get("versions") or {}).items())
    out = _table(
        ["space", "device", "backend", "threads", "batch", "clock", "date", "versions"],
        [
            [
                table.get("space"),
                meta.get("device"),
                meta.get("backend"),
                meta.get("threads"),
                meta.get("batch_size"),
                (meta.get("timing") or {}).get("clock"),
                meta.get("date"),
                versions,
            ]
        ],
    )
    fit = meta.get("calibration")
    if isinstance(fit, dict):
        out += _table(
            ["calibration archs", "scale", "offset (ms)", "applied", "MAPE on them before", "after"],
            [
                [
                    fit["archs"],
                    float(fit["scale"]),
                    float(fit["offset_ms"]),
                    bool(fit["applied"]),
                    float(fit["mape_before"]),
                    float(fit["mape_after"]),
                ]
            ],
        )
    check = meta.get("validation")
    if isinstance(check, dict):
        raw = check.get("mape_uncalibrated")
        out += _table(
            ["validation archs", "MAPE", "MAPE uncalibrated", "Kendall tau"],
            [
                [
                    check["archs"],
                    float(check["mape"]),
                    "-" if raw is None else float(raw),
                    float(check["kendall_tau"]),
                ]
            ],
        )
    return out


def _guarded(path: Path, section: Callable[..., str], *args: Any) -> str:
    """A section built from an untrusted file; a file not in the expected shape is a one-line error."""
    try:
        return section(*args)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        detail = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise ConfigError(
            f"{path} is malformed ({type(e).__name__}: {detail}); expected the file as supernet writes it"
        ) from None


def _json_file(folder: Path, name: str) -> Any:
    path = inside(folder, name)
    return None if path is None else _read_json(path)


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None


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
    path = Path(out) if out is not None else root / REPORT_NAME
    if path.is_dir():
        raise ConfigError(f"--out {path} is a directory; expected the path of an HTML file")
    sections: list[tuple[str, str]] = []
    config = next((c for f in _folders(root) if (c := inside(f, CONFIG)) is not None), None)
    if config is not None:
        sections.append((f"config ({config.relative_to(root)})", _pre(_text(config))))
    for folder in _folders(root):
        rel = str(folder.relative_to(root)) if folder != root else "."
        sections += _folder_sections(folder, f" ({rel})" if rel != "." else "")
    if not sections:
        raise ConfigError(
            f"{root} holds nothing to report (no config.yaml, metrics.jsonl, result.json, "
            f"rank.json, similarity.json or groundtruth.csv)"
        )
    title = f"supernet report: {root.resolve().name}"
    nav = "".join(f'<li><a href="#s{i}">{html.escape(t)}</a></li>' for i, (t, _) in enumerate(sections))
    body = "".join(f'<h2 id="s{i}">{html.escape(t)}</h2>{content}' for i, (t, content) in enumerate(sections))
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1><ul>{nav}</ul>{body}</body></html>\n"
    )
    try:
        atomic_write_text(path, page)
    except OSError as e:
        raise ConfigError(f"cannot write the report {path}: {e.strerror or e}") from None
    return path
