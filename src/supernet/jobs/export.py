"""The `export` verb: an arch of a trained supernet as a stand-alone model with inherited weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from supernet.core.extras import require
from supernet.core.io import atomic_write_text
from supernet.jobs.retrain import train_standalone  # noqa: F401  (re-exported)
from supernet.model.export import export_model
from supernet.model.protocol import SupernetModel
from supernet.model.standalone import StandaloneNet
from supernet.runs.build import (  # noqa: F401  (re-exported: the verbs' building blocks)
    EXECUTION_FIELDS,
    STANDALONE_SECTIONS,
    SUPERNET_SECTIONS,
    build_evaluator,
    build_space,
    check_run,
    config_hash,
    config_sections,
    eval_loader,
    load_data,
    recal_batches,
    require_batches,
    runtime_of,
    start_run,
    train_loader,
    val_batches,
)
from supernet.runs.load import (  # noqa: F401  (re-exported)
    checkpoint_digest,
    checkpoint_path,
    load_supernet,
    parse_arch,
    space_of,
    trained_config,
)
from supernet.space import Arch

if TYPE_CHECKING:
    pass


# -- export ----------------------------------------------------------------------------------------


# -- export ----------------------------------------------------------------------------------------
def export_arch(
    checkpoint: Path,
    arch_text: str,
    out_dir: Path,
    drop_els: bool = False,
    onnx: bool = False,
) -> dict[str, Any]:
    """Write the stand-alone model of `arch_text` of the supernet at `checkpoint` (see `export_path`)."""
    net, meta = load_supernet(checkpoint)
    return export_path(net, meta, parse_arch(net.space, arch_text), out_dir, drop_els=drop_els, onnx=onnx)


def check_onnx_extra() -> None:
    """`--onnx` needs onnx (the model) and onnxruntime (its check): a one-line MissingExtra before anything is
    written, rather than a folder half exported."""
    require("onnx", "export --onnx")
    require("onnxruntime", "export --onnx")


def export_path(
    net: SupernetModel,
    meta: dict[str, Any],
    arch: Arch,
    out_dir: Path,
    drop_els: bool = False,
    onnx: bool = False,
) -> dict[str, Any]:
    """Write the stand-alone model of `arch` with `net`'s weights as they are (the pipeline passes a net whose
    path BatchNorms it recalibrated): config JSON, inherited weights, and a torch.export program; with `onnx`,
    also `model.onnx`, checked against PyTorch with onnxruntime (`supernet.model.onnx_export`). `meta` is the
    checkpoint's (its normalisation goes into `model.json`).

    The model computes what the supernet path computes (trained ELS folded or kept); `drop_els` drops
    shape-keeping ELS layers instead (SCARLET's rule for retraining; the result says it differs).
    """
    if onnx:
        check_onnx_extra()
    model = export_model(net, arch, drop_els=drop_els).eval()
    dropped = _dropped_els(net, arch) if drop_els else []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {
        **model.config,
        "normalisation": {"mean": meta.get("mean"), "std": meta.get("std")},
        "els_dropped": dropped,
        "same_function_as_supernet_path": not dropped,
    }
    atomic_write_text(out_dir / "model.json", json.dumps(config, indent=1))
    from supernet.core.io import atomic_write

    atomic_write(out_dir / "weights.pt", lambda f: torch.save(model.state_dict(), f))
    program = _try_torch_export(model, out_dir / "model.pt2")
    out = {
        "arch": arch.to_string(),
        "dir": str(out_dir),
        "config": str(out_dir / "model.json"),
        "weights": str(out_dir / "weights.pt"),
        "program": program,
        "els_folded": len(model.config.get("els_folded", [])),
        "els_kept": len(model.config.get("els_kept", [])),
        "els_dropped": len(dropped),
        "same_function_as_supernet_path": not dropped,
    }
    if onnx:
        from supernet.model.onnx_export import export_onnx

        out["onnx"] = export_onnx(model, out_dir / "model.onnx", meta.get("mean"), meta.get("std"))
    return out


def _dropped_els(net: SupernetModel, arch: Arch) -> list[int]:
    """Layers whose trained, shape-keeping ELS the paper's rule drops."""
    if net.options.identity != "els" or net.space.topology != "chain":
        return []
    return [i for i, (layer, op) in enumerate(zip(net.space.layers, arch.ops)) if op == "id" and layer.keeps_shape]


def _try_torch_export(model: StandaloneNet, path: Path) -> str | None:
    """A `torch.export` program that loads with plain torch (`torch.export.load`), no supernet code."""
    try:
        batch = torch.export.Dim("batch")
        program = torch.export.export(model, (model.example_input(2),), dynamic_shapes=({0: batch},))
        from supernet.core.io import atomic_write

        atomic_write(path, lambda f: torch.export.save(program, f))
        return str(path)
    except Exception:  # noqa: BLE001 - optional artefact; the config + weights are the contract
        return None


def load_exported(out_dir: Path) -> StandaloneNet:
    """Rebuild an exported model from its config and weights (no supernet checkpoint needed)."""
    config = json.loads((Path(out_dir) / "model.json").read_text())
    model = StandaloneNet(config)
    model.load_state_dict(torch.load(Path(out_dir) / "weights.pt", map_location="cpu", weights_only=True))
    return model
