"""Run directories: one folder per run, guarded by a lock file naming the owner's pid."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from types import TracebackType

from supernet.errors import SupernetError

LOCK_NAME = ".lock"


class RunLocked(SupernetError):
    """Another live process is writing the same run directory."""


class RunLock:
    """Exclusive lock on a run directory; a lock left by a dead process is taken over."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.held = False

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and _alive(owner):
                    raise RunLocked(f"run directory {self.path.parent} is in use by process {owner} "
                                    f"(lock {self.path}); wait for it or use another --run-dir") from None
                self.path.unlink(missing_ok=True)  # stale: its owner is gone
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid(), "host": socket.gethostname()}, f)
            self.held = True
            return self
        raise RunLocked(f"could not take the lock {self.path}")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def _owner(self) -> int | None:
        try:
            info = json.loads(self.path.read_text())
            if info.get("host") not in (None, socket.gethostname()):
                return -1  # another host's lock: treat as alive, we cannot check it
            return int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _alive(pid: int) -> bool:
    if pid < 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
