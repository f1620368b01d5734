"""TensorBoard event files (`log.tensorboard: true`): scalars of a run written into RUN/tensorboard/.

`torch.utils.tensorboard` needs the `tensorboard` package (`pip install 'supernet[tensorboard]'`);
without it `require_tensorboard` is a one-line `MissingExtra`, raised by the jobs before any work.
When the setting is off every write is a no-op (`NoEvents`), so callers never test for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, Self

from supernet.core.extras import require

FOLDER = "tensorboard"
"""The event files' folder inside a run directory."""


class Events(Protocol):
    """Where a run's scalars go: `scalars(step, {tag: value})`, then `close()`."""

    def scalars(self, step: int, values: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


class NoEvents:
    """The `log.tensorboard: false` sink: writes nothing."""

    def scalars(self, step: int, values: Mapping[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TensorBoardEvents(NoEvents):
    """A `torch.utils.tensorboard.SummaryWriter` on RUN/tensorboard/; non-numeric and non-finite values
    are left out (TensorBoard plots numbers)."""

    def __init__(self, run_dir: Path) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / FOLDER))

    def scalars(self, step: int, values: Mapping[str, Any]) -> None:
        for tag, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        self.writer.close()


def require_tensorboard(enabled: bool = True) -> None:
    """Raise `MissingExtra` (naming the `[tensorboard]` extra) when `enabled` and tensorboard is missing."""
    if enabled:
        require("tensorboard", "log.tensorboard")


def open_events(run_dir: Path, enabled: bool) -> NoEvents:
    """TensorBoard events in RUN/tensorboard/ when `enabled`, else a sink that writes nothing."""
    return TensorBoardEvents(run_dir) if enabled else NoEvents()
