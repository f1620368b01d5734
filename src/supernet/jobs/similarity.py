"""The `similarity` verb: one layer's candidate outputs compared on a trained supernet (the measure itself:
`supernet.analysis.similarity`)."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from supernet.analysis.metrics import json_safe
from supernet.analysis.similarity import candidate_similarity
from supernet.config.schema import Config
from supernet.core.io import atomic_write_text


def run_similarity(
    cfg: Config,
    checkpoint: str | Path,
    layer: int,
    run_dir: str | Path,
    arch: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Similarity matrix of layer `layer` on a fixed validation batch; writes similarity.json/.png."""
    from supernet.analysis.plots import figures_available, plot_heatmap
    from supernet.runs.build import eval_loader, load_data, runtime_of
    from supernet.runs.load import load_supernet, parse_arch, trained_config

    runtime = replace(runtime_of(cfg), amp="off")  # cosines in float32: bf16 rounding would blur them
    net, meta = load_supernet(Path(checkpoint))
    net = runtime.prepare(net)
    cfg = trained_config(cfg, meta)
    prefix = parse_arch(net.space, arch) if arch else net.space.sample(random.Random(f"similarity:{seed}"))
    x, _ = next(iter(eval_loader(cfg, load_data(cfg), "val", batch_size)))
    ops, matrix = candidate_similarity(net, layer, runtime.batch(x), prefix)
    off = matrix.copy()
    np.fill_diagonal(off, np.nan)
    mean_others = np.nanmean(off, axis=1) if len(ops) > 1 else np.full(len(ops), np.nan)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    figure = figures_available("similarity")
    if figure:
        plot_heatmap(
            matrix,
            ops,
            [f"{op}\n{m:.2f}" for op, m in zip(ops, mean_others)],
            run_dir / "similarity.png",
            f"layer {layer}: cosine similarity of candidate outputs (batch {x.shape[0]})",
            vmin=min(0.0, float(matrix.min())),
            vmax=1,
        )
    out = {
        "checkpoint": str(checkpoint),
        "layer": layer,
        "ops": ops,
        "matrix": matrix.tolist(),
        "mean_similarity_to_others": mean_others.tolist(),
        "prefix_arch": prefix.to_string(),
        "prefix_source": "arch" if arch else f"random seed {seed}",
        "batch_size": int(x.shape[0]),
        "figure": "similarity.png" if figure else None,
    }
    atomic_write_text(run_dir / "similarity.json", json.dumps(json_safe(out), indent=1))
    return out
