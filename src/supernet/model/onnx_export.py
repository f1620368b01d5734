"""ONNX export of a stand-alone model, checked against PyTorch with onnxruntime.

The graph takes *normalised* images (`(pixel / 255 - mean) / std` per channel, NCHW float32,
any batch size) and returns logits; normalisation is not in the graph, it is in the model's
metadata (`normalisation_mean`, `normalisation_std`, as in the exported `model.json`).
Opset: `supernet.cost.timing.ONNX_OPSET` (17), written by torch's TorchScript-based exporter.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from supernet.core.extras import require
from supernet.core.io import atomic_write
from supernet.cost.timing import ONNX_OPSET, onnx_bytes, onnx_session
from supernet.model.standalone import StandaloneNet

TOLERANCE = 1e-4
"""Largest allowed |onnxruntime - torch| / (1 + |torch|) on the random check inputs."""


def export_onnx(
    model: StandaloneNet,
    path: Path,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    check_batches: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Write `model` to `path` as ONNX and compare onnxruntime's outputs with PyTorch's on
    `check_batches` random batches (sizes 1, 2, 3...). Raises RuntimeError when they differ."""
    onnx = require("onnx", "export --onnx")

    model = model.eval()
    proto = onnx.load_from_string(onnx_bytes(model, model.example_input(1), dynamic_batch=True))
    metadata = {
        "normalisation_mean": json.dumps(list(mean) if mean else None),
        "normalisation_std": json.dumps(list(std) if std else None),
        "normalisation": "not in the graph: feed (x / 255 - mean) / std per channel",
        "arch": str(model.config.get("arch")),
        "space": str(model.config.get("space")),
    }
    onnx.helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    error = max_difference(model, data, check_batches, seed)
    if not error <= TOLERANCE:
        raise RuntimeError(f"ONNX export differs from PyTorch by {error:.3g} (tolerance {TOLERANCE:g})")
    atomic_write(Path(path), lambda f: f.write(data))
    return {"onnx": str(path), "opset": ONNX_OPSET, "max_difference": error, "check_batches": check_batches}


def max_difference(model: StandaloneNet, data: bytes, batches: int, seed: int) -> float:
    """max |ort - torch| / (1 + |torch|) over random normal inputs of batch sizes 1..batches."""
    session = onnx_session(data, threads=1)
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for batch in range(1, batches + 1):
        x = torch.randn(batch, *model.input_shape, generator=generator)
        with torch.no_grad():
            expected = model(x).numpy()
        got = session.run(None, {"input": x.numpy()})[0]
        worst = max(worst, float(np.max(np.abs(got - expected) / (1 + np.abs(expected)))))
    return worst
