"""Run directories: the names of the files a run writes, and the OS lock on `.lock` (which names the owner).

The layout, in one place (every module takes these names from here):

    config.yaml              the resolved config of the command (never a crash's half-written one)
    checkpoints/last.pt      the latest checkpoint; checkpoints/prev.pt the one before
    metrics.jsonl            per-step and per-epoch training metrics
    result.json              a search's result, or a stand-alone training's accuracies
    journal.sqlite           every evaluation of a search, as it happens (resume)
    eval-cache.sqlite        next to a supernet's checkpoint: evaluations shared by its searches
    export/                  model.json, weights.pt, model.pt2 of an exported arch
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import Self

from supernet.core.errors import SupernetError

LOCK_NAME = ".lock"
CONFIG = "config.yaml"
CHECKPOINTS = "checkpoints"
LAST = "last.pt"
PREV = "prev.pt"
METRICS = "metrics.jsonl"
RESULT = "result.json"
JOURNAL = "journal.sqlite"
EVAL_CACHE = "eval-cache.sqlite"
EXPORT = "export"
FEW_SHOT = "few-shot"  # the sub-supernets of a few-shot split, one run directory each
FEW_SHOT_MANIFEST = "few-shot.json"  # written once every part is trained


class RunLocked(SupernetError):
    """Another live process is writing the same run directory."""


class RunLock:
    """Exclusive lock on a run directory: `fcntl.flock` on `.lock`, held while the file stays open.

    The OS grants the lock to exactly one open file and drops it when its holder exits (even by
    SIGKILL), so a lock left by a dead process is simply taken. The pid and host written into the
    file are only for the message a refused process prints.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.fd: int | None = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def acquire(self) -> Self:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunLocked(f"cannot use run directory {self.path.parent}: {e.strerror or e}") from None
        for _ in range(100):  # retried only while holders unlink the file between our open and flock
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunLocked(
                    f"run directory {self.path.parent} is in use by {self._owner()} "
                    f"(lock {self.path}); wait for it or use another --run-dir"
                ) from None
            if self._same_file(fd):
                self._write_owner(fd)
                self.fd = fd
                return self
            os.close(fd)  # the holder we waited on removed the file: lock the new one
        raise RunLocked(f"could not take the lock {self.path}")

    def release(self) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)  # while still holding it: a waiter then re-checks the inode
            os.close(self.fd)
            self.fd = None

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise RunLocked(
                f"cannot create the lock {self.path}: {e.strerror or e}; the run directory must be a writable folder"
            ) from None

    def _same_file(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    @staticmethod
    def _write_owner(fd: int) -> None:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode(), 0)
        os.fsync(fd)

    def _owner(self) -> str:
        """Who holds the lock, in words, from the file's (untrusted, possibly not yet written) content."""
        try:
            info = json.loads(self.path.read_text())
            pid, host = int(info["pid"]), str(info.get("host") or "")
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"
        if host and host != socket.gethostname():
            return f"process {pid} on host {host}"
        return f"process {pid}"

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


# What each command leaves in its run directory, checked in this order (`checkpoints/` last: a
# pipeline or ground-truth run holds training runs in sub-folders, a train/retrain run directly).
_MARKERS = (
    ("summary.json", "pipeline"),
    ("supernet/checkpoints", "pipeline"),
    ("journal.sqlite", "search"),
    ("model.json", "export"),
    ("rank.json", "rank"),
    ("similarity.json", "similarity"),
    ("groundtruth.csv", "groundtruth"),
    ("checkpoints", "train"),
)
# Commands that may continue each other's run directories (the checkpoint's kind is checked on resume).
_SAME_FAMILY = {"train": {"train", "retrain"}, "retrain": {"train", "retrain"}}


def run_kind(run_dir: Path) -> str | None:
    """The command whose files `run_dir` holds (`train` stands for train and retrain), or None."""
    for name, kind in _MARKERS:
        if (Path(run_dir) / name).exists():
            return kind
    return None


def check_output_dir(run_dir: Path, command: str, option: str = "--run-dir") -> None:
    """Refuse, before anything is written, an output directory that cannot be one or that belongs to
    another command (e.g. `search --run-dir` pointing at the supernet's own run directory)."""
    path = Path(run_dir)
    if path.is_symlink() and not path.exists():
        raise SupernetError(f"{option} {path} is a dangling symbolic link; expected a directory")
    if path.exists() and not path.is_dir():
        raise SupernetError(f"{option} {path} is a file; expected a directory (it is created if missing)")
    kind = run_kind(path) if path.is_dir() else None
    if kind is not None and kind not in _SAME_FAMILY.get(command, {command}):
        raise SupernetError(
            f"{option} {path} is the run directory of `supernet {kind}`; give `supernet {command}` "
            f"a directory of its own (nothing was written)"
        )
