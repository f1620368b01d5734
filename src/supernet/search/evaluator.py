"""Evaluators: arch -> accuracy in [0, 1]; memoisation; a CSV lookup table."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from supernet.core.errors import ConfigError, SearchError, SpaceError
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace


@runtime_checkable
class Evaluator(Protocol):
    def evaluate(self, arch: Arch) -> float:
        """Accuracy of `arch` in [0, 1]."""
        ...


class MemoEvaluator:
    """Wraps an evaluator with a cache by Arch; `calls` counts real (uncached) evaluations."""

    def __init__(self, inner: Evaluator) -> None:
        self.inner = inner
        self.cache: dict[Arch, float] = {}
        self.calls = 0

    def evaluate(self, arch: Arch) -> float:
        if arch not in self.cache:
            self.calls += 1
            self.cache[arch] = float(self.inner.evaluate(arch))
        return self.cache[arch]


def as_metrics(evaluator: Evaluator, metric: str = "accuracy") -> Callable[[Arch], dict[str, float]]:
    """Adapt an Evaluator to the `evaluate(arch) -> metrics dict` form used by `run_search`."""
    return lambda arch: {metric: float(evaluator.evaluate(arch))}


class TableEvaluator:
    """Accuracy (and extra cost columns) looked up in a CSV `arch,accuracy[,macs,params,...]`.

    Arch strings are anything `space.parse_arch` accepts (quote comma-separated ones).
    """

    def __init__(self, path: str | Path, space: SearchSpace) -> None:
        self.path = Path(path)
        self.space = space
        self.columns: tuple[str, ...] = ()
        self.rows: dict[Arch, dict[str, float]] = {}
        self._load()

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, arch: object) -> bool:
        return arch in self.rows

    def metrics(self, arch: Arch) -> dict[str, float]:
        if arch not in self.rows:
            raise SearchError(f"arch '{arch}' is not in table {self.path}")
        return dict(self.rows[arch])

    def evaluate(self, arch: Arch) -> float:
        return self.metrics(arch)["accuracy"]

    def costs(self, arch: Arch) -> dict[str, float]:
        """The extra (non-accuracy) columns, usable as a search cost function."""
        return {k: v for k, v in self.metrics(arch).items() if k != "accuracy"}

    def _load(self) -> None:
        try:
            with self.path.open(newline="") as f:
                reader = csv.reader(f)
                lines: dict[Arch, int] = {}
                for row in reader:
                    if not any(cell.strip() for cell in row):
                        continue
                    if not self.columns:
                        self._read_header(row, reader.line_num)
                    else:
                        self._read_row(row, reader.line_num, lines)
        except OSError as e:
            raise ConfigError(f"cannot read table {self.path}: {e.strerror or e}") from None
        except (csv.Error, UnicodeDecodeError) as e:
            raise ConfigError(f"{self.path}: malformed CSV: {e}") from None
        if not self.columns:
            raise ConfigError(f"{self.path}: empty table; expected a header 'arch,accuracy[,macs,...]'")
        if not self.rows:
            raise ConfigError(
                f"{self.path}: the table has a header but no rows; expected one "
                f"'{','.join(self.columns)}' row per architecture"
            )

    def _read_header(self, row: list[str], line: int) -> None:
        cols = tuple(c.strip() for c in row)
        if cols[:2] != ("arch", "accuracy") or len(set(cols)) != len(cols) or not all(cols):
            raise ConfigError(
                f"{self.path}:{line}: header must be 'arch,accuracy[,macs,params,...]' with "
                f"distinct names, got '{','.join(cols)}'"
            )
        self.columns = cols

    def _read_row(self, row: list[str], line: int, lines: dict[Arch, int]) -> None:
        where = f"{self.path}:{line}"
        if len(row) != len(self.columns):
            raise ConfigError(
                f"{where}: expected {len(self.columns)} fields ({','.join(self.columns)}), got {len(row)}"
            )
        try:
            arch = self.space.parse_arch(row[0])
        except SpaceError as e:
            raise ConfigError(f"{where}: {e}") from None
        if arch in lines:
            raise ConfigError(f"{where}: arch '{arch}' already listed on line {lines[arch]}")
        values = {col: _number(where, col, text) for col, text in zip(self.columns[1:], row[1:])}
        if not 0.0 <= values["accuracy"] <= 1.0:
            raise ConfigError(f"{where}: accuracy {values['accuracy']:g} is outside [0, 1]")
        lines[arch] = line
        self.rows[arch] = values


def _number(where: str, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{where}: column '{column}': '{text.strip()}' is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}: column '{column}': '{text.strip()}' is not finite")
    return value
