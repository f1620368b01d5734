"""The `export` verb: an arch of a trained supernet as a stand-alone model with inherited weights."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from supernet.core.errors import CheckpointError, SupernetError
from supernet.core.extras import require
from supernet.core.io import atomic_write, atomic_write_text, no_constants, unique_keys
from supernet.core.logs import get_logger
from supernet.model.export import export_model
from supernet.model.protocol import SupernetModel
from supernet.model.standalone import StandaloneNet
from supernet.ops.blocks import build_block
from supernet.ops.modules import trusted_modules
from supernet.ops.standalone import CONFIG_FORMAT
from supernet.runs.load import load_supernet, parse_arch
from supernet.space import Arch

logger = get_logger(__name__)


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

    The model computes what the supernet path computes (trained ELS folded or kept); `drop_els` builds the
    LET paper's model for retraining instead (every identity dropped, the next block's input channels
    adjusted, a strided one's downsampling kept as a subsampling; the result says it differs).
    """
    if onnx:
        check_onnx_extra()
    model = export_model(net, arch, drop_els=drop_els).eval()
    dropped = _dropped_els(net, arch) if drop_els else []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    program, failure = _try_torch_export(model, out_dir / "model.pt2")
    config = {
        **model.config,
        "normalisation": {"mean": meta.get("mean"), "std": meta.get("std")},
        "els_dropped": dropped,
        "same_function_as_supernet_path": not dropped,
        **({"torch_export_error": failure} if failure else {}),
    }
    atomic_write_text(out_dir / "model.json", json.dumps(config, indent=1))
    atomic_write(out_dir / "weights.pt", lambda f: torch.save(model.state_dict(), f))
    out = {
        "arch": arch.to_string(),
        "dir": str(out_dir),
        "config": str(out_dir / "model.json"),
        "weights": str(out_dir / "weights.pt"),
        "program": program,
        **({"program_error": failure} if failure else {}),
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
    """Layers whose trained ELS the LET model drops (every identity; `let_standalone_config`)."""
    if net.options.identity != "els" or net.space.topology != "chain":
        return []
    return [i for i, op in enumerate(net.path_of(arch).ops) if op == "id"]


def _try_torch_export(model: StandaloneNet, path: Path) -> tuple[str | None, str | None]:
    """A `torch.export` program that loads with plain torch (`torch.export.load`), no supernet code:
    (its path, None), or (None, why not) after a logged warning; model.json and weights.pt are the contract,
    the program an extra."""
    try:
        batch = torch.export.Dim("batch")
        program = torch.export.export(model, (model.example_input(2),), dynamic_shapes=({0: batch},))
        atomic_write(path, lambda f: torch.export.save(program, f))
        return str(path), None
    except Exception as e:  # noqa: BLE001 - any failure of the optional artefact is reported, not raised
        lines = str(e).strip().splitlines()
        why = f"{type(e).__name__}: {lines[0][:300] if lines else 'no message'}"
        logger.warning(f"export: {path.name} not written ({why}); model.json and weights.pt are complete")
        return None, why


MAX_MODEL_JSON_BYTES = 16 << 20
"""A `model.json` larger than this is refused unread (an exported model's is a few kB)."""
MAX_BLOCK_INT = 1 << 20
"""No integer in a block config (channels, kernel, stride, groups...) may exceed this: sizes are bounded
before anything is built."""
MAX_BLOCKS = 10_000


def load_exported(out_dir: Path, trust_modules: Sequence[str] = ()) -> StandaloneNet:
    """Rebuild an exported model from its config and weights (no supernet checkpoint needed).

    Both files are untrusted (SECURITY.md): `model.json` is strict JSON (no NaN/Infinity, no key given
    twice) with bounded sizes; a `module` block's class comes only from a module this process has already
    imported or one named in `trust_modules` (nothing is imported from the model's folder); the model is
    first built on the `meta` device (no memory) and must match `weights.pt` key for key and shape for shape
    before it is built for real. Every problem is one CheckpointError/SpaceError line naming the file."""
    out_dir = Path(out_dir)
    config_path, weights_path = out_dir / "model.json", out_dir / "weights.pt"
    config = _read_model_json(config_path)
    weights = _read_weights(weights_path)
    with trusted_modules(trust_modules):
        skeleton = _build_blocks(config, config_path, torch.device("meta"))
        _check_weights(skeleton, weights, weights_path)
        model = StandaloneNet(config)
    model.load_state_dict(weights)
    return model


def _read_model_json(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_MODEL_JSON_BYTES:
            raise CheckpointError(f"{path} is larger than {MAX_MODEL_JSON_BYTES >> 20} MiB; not an exported model")
        config = json.loads(
            path.read_bytes(), parse_constant=no_constants, object_pairs_hook=unique_keys("key {key!r} given twice")
        )
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise CheckpointError(f"{path} is not valid JSON: {str(e).splitlines()[0][:200]}") from None
    _check_config(config, path)
    return config


def _check_config(config: Any, path: Path) -> None:
    """The shape of an exported config, and every integer in its blocks bounded, before anything is built."""
    expected = f"an exported model ({{format: {CONFIG_FORMAT!r}, input_shape: [C, H, W], blocks: [{{type, ...}}]}})"
    if not isinstance(config, dict) or config.get("format") != CONFIG_FORMAT:
        raise CheckpointError(f"{path} is not {expected}")
    shape, blocks = config.get("input_shape"), config.get("blocks")
    if not (
        isinstance(shape, list) and 1 <= len(shape) <= 4 and all(type(v) is int and 1 <= v <= 1 << 16 for v in shape)
    ):
        raise CheckpointError(f"{path}: input_shape must be 1 to 4 ints in 1..65536, got {str(shape)[:80]}")
    if not (isinstance(blocks, list) and 0 < len(blocks) <= MAX_BLOCKS):
        raise CheckpointError(f"{path}: blocks must be a list of 1 to {MAX_BLOCKS} block configs")
    for i, block in enumerate(blocks):
        if not (isinstance(block, dict) and isinstance(block.get("type"), str)):
            raise CheckpointError(f"{path}: block {i} is not a block config ({{type: str, ...}})")
        too_big = _first_large_int(block)
        if too_big is not None:
            raise CheckpointError(
                f"{path}: block {i} ({block['type'][:40]!r}) has {too_big[0]}={too_big[1]}, "
                f"beyond the size bound {MAX_BLOCK_INT}"
            )


def _first_large_int(value: Any, key: str = "") -> tuple[str, int] | None:
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = ((f"{key}[{i}]", v) for i, v in enumerate(value))
    else:
        return (key, value) if type(value) is int and abs(value) > MAX_BLOCK_INT else None
    for k, v in items:
        found = _first_large_int(v, str(k)[:40])
        if found is not None:
            return found
    return None


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """`weights.pt` as a state dict of dense tensors (an expanded view could claim more memory than the
    file holds), without torch's multi-line advice to load untrusted files unsafely."""
    what = "an exported weights file (a state dict of tensors written by `supernet export`)"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path} not found: {what} is needed beside model.json") from None
    except Exception:  # noqa: BLE001 - unpickling errors of every kind: the file is not ours
        raise CheckpointError(f"{path} is not {what}; refused (nothing of it was run)") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) and _is_dense(v) for k, v in state.items()
    ):
        raise CheckpointError(f"{path} is not {what}")
    return state


def _is_dense(t: torch.Tensor) -> bool:
    return t.untyped_storage().nbytes() >= t.numel() * t.element_size()


def _build_blocks(config: dict[str, Any], path: Path, device: torch.device) -> nn.Sequential:
    """The model's blocks built one by one on `device` (`meta`: shapes only, no memory), each failure one
    line naming the block."""
    blocks = []
    for i, block in enumerate(config["blocks"]):
        if block["type"] == "identity":  # StandaloneNet drops them
            continue
        try:
            with device:
                blocks.append(build_block(block))
        except SupernetError:
            raise
        except Exception as e:  # noqa: BLE001 - a builder's KeyError/TypeError/ValueError on a bad field
            raise CheckpointError(
                f"{path}: block {i} ({block['type'][:40]!r}) cannot be built: "
                f"{type(e).__name__} {(str(e).splitlines() or [''])[0][:160]}"
            ) from None
    return nn.Sequential(*blocks)


def _check_weights(skeleton: nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    if missing or unexpected:
        first = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0][:80]!r}"
        raise CheckpointError(
            f"{path} does not match model.json ({len(missing)} missing, {len(unexpected)} unexpected entries; {first})"
        )
    for key, shape in expected.items():
        if tuple(weights[key].shape) != shape:
            raise CheckpointError(
                f"{path}: {key!r} has shape {list(weights[key].shape)}, model.json's model needs {list(shape)}"
            )
