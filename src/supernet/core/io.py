"""Crash-safe file writes: write to a temporary file in the same folder, fsync, rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(
    path: Path, write: Callable[[IO[bytes]], None], before_replace: Callable[[], None] | None = None
) -> None:
    """Call `write(f)` on a temporary file and atomically move it to `path` once complete.

    On any failure (including a full disk) the temporary file is removed and `path` is untouched.
    `before_replace` runs once the new content is safely on disk, just before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; a plain open() respects the umask
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def current_umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def no_constants(text: str) -> None:
    """A `json.loads` `parse_constant` that refuses NaN, Infinity and -Infinity (json accepts them; no file we
    read may hold them): a ValueError naming the constant."""
    raise ValueError(f"{text} is not a number")


def unique_keys(message: str, cut: int = 60) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """A `json.loads` `object_pairs_hook` that refuses a key given twice (json would silently keep the last):
    a ValueError whose text is `message` formatted with `key`, the key cut to `cut` characters."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ValueError(message.format(key=key[:cut]))
            out[key] = value
        return out

    return hook
