"""The package's loggers: one per module, all under the root logger `supernet` (as `optuna.logging`).

As a library the package adds no handler and sets no level: `supernet`'s records go wherever the
application's `logging` configuration sends them, and without one Python's last-resort handler shows
WARNING and above on stderr, so progress lines (INFO) stay silent. The `supernet` command alone installs
a stderr handler (`enable_stderr`) at INFO, DEBUG with `-v`, WARNING with `-q`, ERROR with `-qq`.
Results a command prints on stdout are not log records; they stay `print`s in `cli.py`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

ROOT = "supernet"
LEVELS = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)


def get_logger(name: str) -> logging.Logger:
    """The logger of module `name` (pass `__name__`); a name outside the package goes under `supernet`."""
    if name != ROOT and not name.startswith(ROOT + "."):
        name = f"{ROOT}.{name}"
    return logging.getLogger(name)


def set_verbosity(level: int) -> None:
    """The level of every `supernet` logger (e.g. `logging.INFO`)."""
    logging.getLogger(ROOT).setLevel(level)


def get_verbosity() -> int:
    """The effective level of the `supernet` loggers."""
    return logging.getLogger(ROOT).getEffectiveLevel()


def verbosity_level(verbose: int = 0, quiet: int = 0) -> int:
    """INFO, one step down (DEBUG) per `-v` and up (WARNING, ERROR) per `-q`, clamped to LEVELS."""
    index = LEVELS.index(logging.INFO) - verbose + quiet
    return LEVELS[min(max(index, 0), len(LEVELS) - 1)]


class _Stderr(logging.StreamHandler):
    """Writes to the `sys.stderr` of the moment (a test's captured stream, a redirected one)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201 - logging's own attribute
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


_handler: _Stderr | None = None


def enable_stderr(level: int = logging.INFO) -> logging.Handler:
    """Log `supernet` records of `level` and above to stderr as bare lines (the command line's output);
    a second call replaces the first call's handler, so records are never printed twice."""
    global _handler
    root = logging.getLogger(ROOT)
    disable_stderr()
    _handler = _Stderr()
    _handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(_handler)
    set_verbosity(level)
    return _handler


def disable_stderr() -> None:
    """Remove the handler `enable_stderr` installed (if any)."""
    global _handler
    if _handler is not None:
        logging.getLogger(ROOT).removeHandler(_handler)
        _handler = None


@contextmanager
def stderr_logging(level: int = logging.INFO) -> Iterator[logging.Handler]:
    """`enable_stderr(level)` for the block; afterwards the handler is gone and the level is as before
    (so `supernet.cli.main` called in a process leaves that process's logging as it found it)."""
    before = logging.getLogger(ROOT).level
    try:
        yield enable_stderr(level)
    finally:
        disable_stderr()
        set_verbosity(before)
