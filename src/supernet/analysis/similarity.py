"""Feature similarity between the candidates of one layer (SCARLET-NAS section 3.2, Fig. 4).

The same input batch is pushed through a fixed path up to layer L (an explicit arch or a seeded
random one); every candidate of layer L is applied to that input, and for each pair of candidates
the cosine similarity between their flattened per-sample outputs is averaged over the batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from supernet.core.errors import ConfigError
from supernet.model.fewshot import FewShotSupernet
from supernet.model.supernet import Supernet
from supernet.space import Arch


def candidate_similarity(
    net: Supernet | FewShotSupernet, layer: int, x: torch.Tensor, prefix: Arch, batch_stats: bool = True
) -> tuple[list[str], np.ndarray]:
    """(op names, C x C matrix of batch-mean cosine similarities between layer `layer`'s candidates).

    `prefix` fixes the ops of the layers before `layer` (its later ops are ignored). With
    `batch_stats` BatchNorm normalises with the batch's own statistics, as in supernet training
    (the running statistics of a weight-sharing supernet mix many paths); the net's buffers are
    restored afterwards, so the call has no side effects. On a few-shot supernet each candidate runs on the
    part that holds its path (the prefix through that part's own stem and layers).
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
    net: Supernet | FewShotSupernet, layer: int, x: torch.Tensor, prefix: Arch, batch_stats: bool = True
) -> torch.Tensor:
    """The outputs of every candidate of `layer` on the same input: C x B x channels x H x W."""
    saved = [(b, b.detach().clone()) for b in net.buffers()]
    was_training = net.training
    net.train(batch_stats)
    try:
        with torch.no_grad():
            inputs: dict[int, torch.Tensor] = {}  # the input of `layer`, per (sub-)supernet
            outputs = []
            for op in net.space.layers[layer].choices:
                path = prefix.replace(layer, op)
                model = _model_of(net, path)
                if id(model) not in inputs:
                    inputs[id(model)] = _prefix_output(model, layer, prefix.ops, x)
                outputs.append(_run_layer(model, layer, path.ops, inputs[id(model)]))
            return torch.stack(outputs)
    finally:
        net.train(was_training)
        for buf, value in saved:
            buf.copy_(value)


def _model_of(net: Supernet | FewShotSupernet, path: Arch) -> Supernet:
    """The supernet that scores `path`: a few-shot supernet's part that holds it (its own stem and layers)."""
    return net.part(path) if isinstance(net, FewShotSupernet) else net


def _prefix_output(net: Supernet, layer: int, ops: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
    h = net.stem(x)
    for i in range(layer):
        h = _run_layer(net, i, ops, h)
    return h


def _run_layer(net: Supernet, i: int, ops: tuple[str, ...], h: torch.Tensor) -> torch.Tensor:
    """Layer i of the path `ops`, including inter-choice dependent weights where the supernet has them."""
    return net.run_layer(i, ops, h)


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
