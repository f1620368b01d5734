"""Checkpoints: atomic writes, the previous good one kept, safe loading (`weights_only=True`)."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from supernet.core.errors import CheckpointError
from supernet.core.io import atomic_write
from supernet.core.rundir import LAST, PREV

FORMAT = "supernet.checkpoint/1"
PREVIOUS = PREV


@dataclass(frozen=True)
class Checkpoint:
    meta: dict[str, Any]
    state: dict[str, Any]


def save_checkpoint(folder: Path, meta: dict[str, Any], state: dict[str, Any]) -> Path:
    """Write `last.pt` atomically; the checkpoint it replaces becomes `prev.pt`.

    The new file is complete on disk before `last.pt` is renamed to `prev.pt` and the new file
    to `last.pt`; a kill between the two renames leaves `prev.pt` complete and `last.pt` absent,
    which `find_checkpoint` handles. A previous checkpoint is therefore always complete.
    """
    folder = Path(folder)
    payload = {"format": FORMAT, "meta": json.dumps({"format": FORMAT, **meta}), "state": state}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    last = folder / LAST

    def keep_previous() -> None:
        if last.exists():
            os.replace(last, folder / PREVIOUS)

    atomic_write(last, lambda f: f.write(data), before_replace=keep_previous)
    return last


def load_checkpoint(path: Path, expect: dict[str, Any] | None = None) -> Checkpoint:
    """Load without executing code from the file; check format and `expect`ed meta fields."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(payload["meta"])
        state = payload["state"]
    except Exception as e:  # noqa: BLE001 - any failure to parse is a corrupt file
        hint = (
            (
                f"; the previous checkpoint {path.parent / PREVIOUS} may still be good (`supernet train --resume "
                f"--fallback` continues from it; other commands can be given that file)"
            )
            if (path.parent / PREVIOUS).exists() and path.name != PREVIOUS
            else ""
        )
        raise CheckpointError(f"checkpoint {path} is unreadable or corrupted ({type(e).__name__}){hint}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {meta.get('format')!r}, this version reads {FORMAT!r}")
    for key, wanted in (expect or {}).items():
        if meta.get(key) != wanted:
            raise CheckpointError(
                f"checkpoint {path} was made for {key}={meta.get(key)!r}, but this run has {key}={wanted!r}"
            )
    return Checkpoint(meta, state)


def find_checkpoint(folder: Path, fallback: bool = False) -> Path | None:
    """The checkpoint to resume from: `last.pt`, or `prev.pt` when `fallback` is set or when a
    kill between the two renames of `save_checkpoint` left no `last.pt`."""
    last, previous = Path(folder) / LAST, Path(folder) / PREVIOUS
    if fallback or not last.exists():
        return previous if previous.exists() else None
    return last


def require_previous(folder: Path) -> None:
    """`--fallback` resumes from `prev.pt`; without one it must stop (not start over), leaving `last.pt` as it is."""
    if not (Path(folder) / PREVIOUS).is_file():
        kept = f"; {Path(folder) / LAST} is left in place" if (Path(folder) / LAST).exists() else ""
        raise CheckpointError(
            f"--fallback needs the previous checkpoint {Path(folder) / PREVIOUS}, which does not "
            f"exist{kept}; resume without --fallback or choose another --run-dir"
        )


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files left by a process killed mid-write (call with the run lock held)."""
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def set_aside_last(folder: Path) -> Path | None:
    """Rename a (bad) `last.pt` to `last.<n>.bad.pt` so that the next save does not rotate it into
    `prev.pt`; the file is kept, never deleted."""
    last = Path(folder) / LAST
    if not last.exists():
        return None
    n = 0
    while (target := last.with_name(f"last.{n}.bad.pt")).exists():
        n += 1
    os.replace(last, target)
    return target
