"""A trained supernet run: its checkpoint, the net, and the config and data it was trained with.

Every verb that reads a supernet (search, export, retrain --supernet, rank, similarity, pipeline)
goes through here, so they agree on where the checkpoint is and which data the net was trained on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from supernet.config.schema import Config, load_config
from supernet.core.errors import CheckpointError, ConfigError, SpaceError
from supernet.core.logs import get_logger
from supernet.model.factory import build_supernet
from supernet.model.protocol import SupernetModel
from supernet.model.supernet import SupernetOptions
from supernet.core.rundir import CHECKPOINTS, CONFIG, FEW_SHOT, FEW_SHOT_MANIFEST
from supernet.space import Arch, SearchSpace, create_space
from supernet.train.checkpoint import (
    LAST,
    find_checkpoint,
    load_checkpoint,
)

logger = get_logger(__name__)


def trained_config(cfg: Config, meta: dict[str, Any]) -> Config:
    """A copy of `cfg` whose data section is the one the supernet was trained with (`cfg` is not changed)."""
    return dataclasses.replace(cfg, data=type(cfg.data)(**meta["data"]))


def supernet_run_dir(path: str | Path) -> Path:
    """The run directory of a supernet given as a run directory or a checkpoint file."""
    path = Path(path)
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == CHECKPOINTS else path.parent


def default_config(supernet: str | Path, config: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """`config` if given, else the supernet run's own config.yaml (else defaults); then overrides."""
    if config is None:
        own = supernet_run_dir(supernet) / CONFIG
        config = own if own.is_file() else None
    return load_config(config, list(overrides))


def load_supernet(checkpoint: Path) -> tuple[SupernetModel, dict[str, Any]]:
    """Rebuild a supernet from a checkpoint (file or run directory) and load its weights; a run directory
    with a finished few-shot split gives the few-shot supernet.

    A space, op or block the checkpoint needs but this process has not registered is a one-line error that
    names the checkpoint's recorded `--import`s; they are never imported from here.
    """
    net, meta = _load_one(Path(checkpoint))
    manifest = few_shot_manifest(Path(checkpoint))
    if manifest is not None:
        net = _few_shot_net(Path(checkpoint), net, manifest)
        meta = {**meta, "few_shot": manifest}
    elif Path(checkpoint).is_dir() and _split_layers(meta):
        logger.warning(
            f"note: {checkpoint} was trained with train.few_shot_layers={_split_layers(meta)} but its few-shot "
            f"split is not finished (no {FEW_SHOT}/{FEW_SHOT_MANIFEST}): using the one-shot supernet's weights; "
            f"finish it with `supernet train --resume`"
        )
    return net, meta


def _split_layers(meta: dict[str, Any]) -> list[int]:
    """The few-shot layers a one-shot checkpoint was trained to be split on ([] if none or unreadable)."""
    train = (meta.get("config") or {}).get("train") if isinstance(meta.get("config"), dict) else None
    layers = train.get("few_shot_layers") if isinstance(train, dict) else None
    return [i for i in layers if type(i) is int][:64] if isinstance(layers, list) else []


def _load_one(checkpoint: Path) -> tuple[SupernetModel, dict[str, Any]]:
    """The supernet of one checkpoint (file or run directory), never a few-shot split."""
    from supernet.core.plugins import missing_import_hint
    from supernet.space import list_spaces

    path = checkpoint_path(checkpoint)
    ckpt = load_checkpoint(path, expect={"kind": "supernet"})
    meta = ckpt.meta
    hint = missing_import_hint(meta.get("imports"))
    if meta["space"] not in {entry.name for entry in list_spaces()}:
        raise CheckpointError(
            f"checkpoint {path} needs search space {str(meta['space'])[:80]!r}, which is not "
            f"registered{hint or ' (check `supernet spaces`)'}"
        )
    space = space_of(meta)
    if space.fingerprint() != meta["space_fingerprint"]:
        raise CheckpointError(
            f"checkpoint {path} was made for a different version of space "
            f"'{meta['space']}' (fingerprint {meta['space_fingerprint']} vs {space.fingerprint()}"
            f"{_first_difference(meta.get('space_description'), space.to_dict())}){hint}"
        )
    try:
        net = build_supernet(space, SupernetOptions(**meta["supernet"]))
    except (ValueError, KeyError) as e:  # an op name or block type nobody registered
        raise CheckpointError(f"checkpoint {path}: cannot build its supernet ({str(e)[:200]}){hint}") from None
    net.load_state_dict(ckpt.state["model"])
    net.eval()
    return net, meta


def few_shot_manifest(run_dir: Path) -> dict[str, Any] | None:
    """A run directory's finished few-shot split (`supernet.jobs.few_shot`), read as untrusted; None if none."""
    path = run_dir / FEW_SHOT / FEW_SHOT_MANIFEST if run_dir.is_dir() else None
    if path is None or not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
        layers, parts = manifest["layers"], manifest["parts"]
        ok = isinstance(layers, list) and len(layers) > 0 and all(type(i) is int for i in layers)
        ok = ok and isinstance(parts, list) and all(_is_part_entry(p, len(layers)) for p in parts)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise CheckpointError(
            f"{path}: not a few-shot manifest (layers: [int, ...] (at least one), "
            f"parts: [{{ops: one per layer, dir: part-<k>, digest}}])"
        )
    return manifest


def _is_part_entry(part: Any, num_layers: int) -> bool:
    return (
        isinstance(part, dict)
        and re.fullmatch(r"part-\d{1,6}", str(part.get("dir"))) is not None
        and isinstance(part.get("ops"), list)
        and len(part["ops"]) == num_layers
        and all(isinstance(op, str) for op in part["ops"])
        and (part.get("digest") is None or re.fullmatch(r"[0-9a-f]{16}", str(part["digest"])) is not None)
    )


def _few_shot_net(run_dir: Path, one_shot: SupernetModel, manifest: dict[str, Any]) -> SupernetModel:
    from supernet.model.fewshot import FewShotSupernet, check_few_shot_layers, few_shot_parts

    where = run_dir / FEW_SHOT / FEW_SHOT_MANIFEST
    space, layers = one_shot.space, manifest["layers"]
    try:
        check_few_shot_layers(space, layers, canonical=False)
    except ConfigError as e:
        raise CheckpointError(f"{where}: {e}") from None
    keys = [tuple(p["ops"]) for p in manifest["parts"]]
    if sorted(keys) != sorted(few_shot_parts(space, layers)):
        raise CheckpointError(f"{where}: its parts do not cover the op combinations of layers {layers}")
    parts = {tuple(p["ops"]): _few_shot_part(run_dir, one_shot, layers, p) for p in manifest["parts"]}
    return FewShotSupernet(space, layers, parts).eval()


def _few_shot_part(run_dir: Path, one_shot: SupernetModel, layers: list[int], entry: dict[str, Any]) -> SupernetModel:
    """One part of a few-shot split, checked against the manifest: a real folder inside `few-shot/` (no
    link), the one-shot space with the manifest's ops fixed in the split layers, the one-shot's supernet
    options, and (manifests since issue 29) the recorded checkpoint digest."""
    from supernet.model.fewshot import part_choices

    root = run_dir / FEW_SHOT
    part_dir = root / entry["dir"]
    what = f"few-shot part {entry['dir']} of {run_dir}"
    if root.is_symlink() or part_dir.is_symlink() or not part_dir.is_dir():
        raise CheckpointError(f"{what}: not a folder inside {root} (links are not followed)")
    path = checkpoint_path(part_dir)
    if path.is_symlink() or not path.resolve().is_relative_to(part_dir.resolve()):
        raise CheckpointError(f"{what}: its checkpoint {path.name} is a link (links are not followed)")
    if entry.get("digest") is not None and file_digest(path) != entry["digest"]:
        raise CheckpointError(f"{what}: its checkpoint is not the one the manifest recorded (digest differs)")
    net, _ = _load_one(part_dir)
    expected = one_shot.space.restrict(part_choices(one_shot.space, layers, entry["ops"]))
    if net.space.fingerprint() != expected.fingerprint():
        raise CheckpointError(
            f"{what}: trained on another space than the one-shot space with {entry['ops']} fixed in layers "
            f"{layers} (a part of another run, a swapped part or a one-shot checkpoint)"
        )
    if net.options != one_shot.options:
        raise CheckpointError(f"{what}: trained with other supernet options than the one-shot supernet")
    return net


def _first_difference(recorded: Any, current: dict[str, Any]) -> str:
    """Where a checkpoint's recorded space description and the registered space first differ."""
    if not isinstance(recorded, dict):
        return ""
    for key in sorted(set(recorded) | set(current)):
        if json.dumps(recorded.get(key), sort_keys=True) != json.dumps(current.get(key), sort_keys=True):
            return f"; first difference in {str(key)[:40]!r}"
    return ""


def space_of(meta: dict[str, Any]) -> SearchSpace:
    """The space a supernet checkpoint was trained on: the registered space, restricted to
    `space_choices` when the supernet was pruned (`supernet prune`)."""
    space = create_space(meta["space"], **meta["space_options"])
    choices = meta.get("space_choices")
    if choices is not None:
        if not isinstance(choices, list) or not all(isinstance(c, list) for c in choices):
            raise CheckpointError(f"checkpoint space_choices must be a list of op lists, got {type(choices).__name__}")
        if len(choices) != space.num_layers:
            raise CheckpointError(
                f"checkpoint space_choices has {len(choices)} layers, space '{space.name}' has {space.num_layers}"
            )
        space = space.restrict(choices)
    return space


def checkpoint_path(path: Path) -> Path:
    """The checkpoint file of a run directory (`checkpoints/last.pt`, or `prev.pt` after a torn save), or `path`."""
    if path.is_dir():
        found = find_checkpoint(path / CHECKPOINTS) or find_checkpoint(path)
        if found is None:
            raise CheckpointError(f"no checkpoint in {path} (looked for {CHECKPOINTS}/{LAST}); train a supernet first")
        return found
    return path


def checkpoint_digest(path: Path) -> str:
    """Content hash of a checkpoint file (the evaluation cache key's first part); of a run directory with a
    few-shot split, of the one-shot checkpoint and every part's."""
    h = _hash_file(checkpoint_path(Path(path)))
    manifest = few_shot_manifest(Path(path))
    for part in manifest["parts"] if manifest else []:
        h.update(checkpoint_digest(Path(path) / FEW_SHOT / part["dir"]).encode())
    return h.hexdigest()[:16]


def file_digest(path: Path) -> str:
    """Content hash of one checkpoint file (what a few-shot manifest records per part)."""
    return _hash_file(path).hexdigest()[:16]


def _hash_file(path: Path) -> Any:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h


def parse_arch(space: SearchSpace, text: str) -> Arch:
    """An arch from a string, a named arch, or a JSON file written by search (`best`) or export (`arch`)."""
    if not text.endswith(".json"):
        return space.parse_arch(text)
    path = Path(text)
    if not path.is_file():
        raise SpaceError(
            f"arch file {path} not found (an arch is op names, indices, a named arch or a result.json/model.json)"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SpaceError(f"cannot read arch file {path}: {e}") from None
    found = _arch_in(data)
    if found is None:
        raise SpaceError(
            f'arch file {path} holds no architecture; expected a search result.json ("best"), '
            f'an export model.json ("arch") or a JSON string'
        )
    return space.parse_arch(found)


def _arch_in(data: Any) -> str | None:
    if isinstance(data, str):
        return data
    if not isinstance(data, dict):
        return None
    for key in ("arch", "best"):
        value = data.get(key)
        if isinstance(value, dict):
            value = value.get("arch")
        if isinstance(value, str):
            return value
    return None


def trained_space(run: str | Path) -> tuple[SearchSpace, str]:
    """(space, identity) a supernet checkpoint (file or run directory) was trained with, read from its metadata
    without building the supernet (e.g. to time that exact space: `supernet latency-table --supernet RUN`)."""
    from supernet.space import list_spaces

    path = checkpoint_path(Path(run))
    meta = load_checkpoint(path, expect={"kind": "supernet"}).meta
    if meta["space"] not in {entry.name for entry in list_spaces()}:
        raise CheckpointError(f"checkpoint {path} needs search space {str(meta['space'])[:80]!r}, which is not registered")
    options = meta.get("supernet")
    identity = options.get("identity", SupernetOptions().identity) if isinstance(options, dict) else None
    if not isinstance(identity, str):
        raise CheckpointError(f"checkpoint {path} records no supernet identity mode")
    return space_of(meta), identity
