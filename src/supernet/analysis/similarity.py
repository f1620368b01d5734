"""Feature similarity between the candidates of one layer (SCARLET-NAS section 3.2, Fig. 4).

The same input batch is pushed through a fixed path up to layer L (an explicit arch or a seeded
random one); every candidate of layer L is applied to that input, and for each pair of candidates
the cosine similarity between their flattened per-sample outputs is averaged over the batch.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from supernet.analysis.metrics import json_safe
from supernet.config import Config
from supernet.errors import ConfigError
from supernet.io import atomic_write_text
from supernet.model.supernet import Supernet
from supernet.space import Arch


def candidate_similarity(
    net: Supernet, layer: int, x: torch.Tensor, prefix: Arch, batch_stats: bool = True
) -> tuple[list[str], np.ndarray]:
    """(op names, C x C matrix of batch-mean cosine similarities between layer `layer`'s candidates).

    `prefix` fixes the ops of the layers before `layer` (its later ops are ignored). With
    `batch_stats` BatchNorm normalises with the batch's own statistics, as in supernet training
    (the running statistics of a weight-sharing supernet mix many paths); the net's buffers are
    restored afterwards, so the call has no side effects.
    """
    if not 0 <= layer < net.space.num_layers:
        raise ConfigError(f"--layer must be in 0..{net.space.num_layers - 1}, got {layer}")
    ops = list(net.space.layers[layer].choices)
    feats = candidate_features(net, layer, x, prefix, batch_stats).flatten(2)  # C x B x D
    unit = feats / feats.norm(dim=2, keepdim=True).clamp_min(1e-12)
    matrix = torch.einsum("ibd,jbd->ijb", unit, unit).mean(dim=2)
    matrix = (matrix + matrix.T) / 2  # exact symmetry despite float rounding
    return ops, matrix.double().cpu().numpy()


def candidate_features(
    net: Supernet, layer: int, x: torch.Tensor, prefix: Arch, batch_stats: bool = True
) -> torch.Tensor:
    """The outputs of every candidate of `layer` on the same input: C x B x channels x H x W."""
    saved = [(b, b.detach().clone()) for b in net.buffers()]
    was_training = net.training
    net.train(batch_stats)
    try:
        with torch.no_grad():
            h = net.stem(x)
            for i in range(layer):
                h = _run_layer(net, i, prefix.ops, h)
            return torch.stack(
                [_run_layer(net, layer, prefix.replace(layer, op).ops, h) for op in net.space.layers[layer].choices]
            )
    finally:
        net.train(was_training)
        for buf, value in saved:
            buf.copy_(value)


def _run_layer(net: Supernet, i: int, ops: tuple[str, ...], h: torch.Tensor) -> torch.Tensor:
    """Layer i of the path `ops`, including inter-choice dependent weights where the supernet has them."""
    return net.run_layer(i, ops, h)


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
    from supernet.analysis.plots import plot_heatmap
    from supernet.assemble import eval_loader, load_data, runtime_of
    from supernet.supernet_run import load_supernet, parse_arch, trained_config

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
        "figure": "similarity.png",
    }
    atomic_write_text(run_dir / "similarity.json", json.dumps(json_safe(out), indent=1))
    return out


def format_matrix(out: dict[str, Any]) -> str:
    ops = out["ops"]
    width = max(6, *(len(o) for o in ops))
    lines = [
        f"layer {out['layer']}: cosine similarity between candidate outputs (batch mean; input from path "
        f"{out['prefix_arch']}, {out['prefix_source']})",
        " " * width + " " + " ".join(f"{o:>{width}}" for o in ops),
    ]
    for op, row in zip(ops, out["matrix"]):
        lines.append(f"{op:>{width}} " + " ".join(f"{v:>{width}.3f}" for v in row))
    lines.append(f"{'mean':>{width}} " + " ".join(f"{v:>{width}.3f}" for v in out["mean_similarity_to_others"]))
    return "\n".join(lines)
