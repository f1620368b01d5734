"""An SQLite journal of a search: every evaluated arch with its metrics, committed as it happens.

Rows are keyed by (cache_key, arch). The cache key names what an evaluation depends on
(`evaluation_key(checkpoint digest, evaluation settings)`), so one journal file is also an
evaluation cache for later searches on the same supernet. A search killed at any point resumes
with `run_journaled`: strategies are deterministic in their seed and the evaluation results, so
replaying the journal as a cache re-traces the same trajectory and evaluates only what is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from supernet.core.errors import SearchError, SpaceError
from supernet.core.logs import get_logger
from supernet.search.objectives import Metrics
from supernet.search.strategy import SearchResult, Strategy, run_search
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace

logger = get_logger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    cache_key TEXT NOT NULL,
    arch TEXT NOT NULL,
    metrics TEXT NOT NULL,
    generation INTEGER,
    seconds REAL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (cache_key, arch)
)
"""
_COLUMNS = ["cache_key", "arch", "metrics", "generation", "seconds", "recorded_at"]


def evaluation_key(checkpoint_digest: str, settings: Any) -> str:
    """`<checkpoint digest>:<hash of the evaluation settings>` (a dataclass or a mapping)."""
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        settings = dataclasses.asdict(settings)
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return f"{checkpoint_digest}:{hashlib.sha256(blob).hexdigest()[:16]}"


def out_of_range(metrics: Mapping[str, float]) -> str | None:
    """Why journaled metrics cannot be a real evaluation (NaN or infinite values, an accuracy outside
    [0, 1]), or None. A journal or evaluation cache may come from others (SECURITY.md)."""
    for name, value in metrics.items():
        if not math.isfinite(value):
            return f"{name}={value} is not a finite number"
        if name == "accuracy" and not 0.0 <= value <= 1.0:
            return f"accuracy={value:g} is outside [0, 1]"
    return None


class Journal:
    """`Journal(path)`; WAL mode, one autocommitted row per `record`. Usable as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._invalid: set[tuple[str, str]] = set()  # (key, arch) rows `lookup` dropped as out of range
        try:
            self._conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")  # durable across process kills in WAL mode
            self._conn.execute(_SCHEMA)
            columns = [row[1] for row in self._conn.execute("PRAGMA table_info(evaluations)")]
        except sqlite3.Error as e:
            self.close()
            raise SearchError(f"{self.path}: not a usable search journal ({e})") from None
        if columns != _COLUMNS:
            self.close()
            raise SearchError(
                f"{self.path}: not a search journal (table 'evaluations' has columns {', '.join(columns)})"
            )

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _execute(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        if self._conn is None:
            raise SearchError(f"{self.path}: the journal is closed")
        try:
            return self._conn.execute(sql, args)
        except sqlite3.Error as e:
            raise SearchError(f"{self.path}: search journal error ({e})") from None

    def record(
        self,
        key: str,
        arch: Arch,
        metrics: Mapping[str, float],
        generation: int | None = None,
        seconds: float | None = None,
    ) -> bool:
        """Commit one evaluation; False (and nothing written) if (key, arch) is already there."""
        verb = "REPLACE" if (key, arch.to_string()) in self._invalid else "IGNORE"  # a dropped row is replaced
        cur = self._execute(
            f"INSERT OR {verb} INTO evaluations VALUES (?, ?, ?, ?, ?, ?)",
            (key, arch.to_string(), json.dumps(dict(metrics)), generation, seconds, time.time()),
        )
        return cur.rowcount == 1

    def rows(self, key: str | None = None) -> list[dict[str, Any]]:
        """Rows in recording order (all keys when `key` is None); metrics decoded."""
        where, args = ("WHERE cache_key = ?", (key,)) if key is not None else ("", ())
        cur = self._execute(f"SELECT {', '.join(_COLUMNS)} FROM evaluations {where} ORDER BY rowid", args)
        out = []
        for values in cur.fetchall():
            row = dict(zip(_COLUMNS, values))
            try:
                row["metrics"] = json.loads(row["metrics"])
            except (TypeError, ValueError):
                raise SearchError(f"{self.path}: corrupted metrics for arch '{row['arch']}'") from None
            row["key"] = row.pop("cache_key")
            out.append(row)
        return out

    def lookup(self, key: str, space: SearchSpace | None = None) -> dict[Arch, Metrics]:
        """Arch -> metrics of every evaluation under `key` (arch strings parsed by `space` if given)."""
        cache: dict[Arch, Metrics] = {}
        dropped: list[str] = []
        for row in self.rows(key):
            try:
                arch = space.parse_arch(row["arch"]) if space is not None else Arch(tuple(row["arch"].split(",")))
            except SpaceError as e:
                raise SearchError(f"{self.path}: journal arch does not fit the space: {e}") from None
            try:
                metrics = {str(k): float(v) for k, v in row["metrics"].items()}
            except (AttributeError, TypeError, ValueError):
                raise SearchError(f"{self.path}: corrupted metrics for arch '{row['arch']}'") from None
            problem = out_of_range(metrics)
            if problem is None:
                cache[arch] = metrics
            else:
                dropped.append(f"arch {row['arch'][:60]}: {problem}")
                self._invalid.add((key, row["arch"]))
        if dropped:
            logger.warning(
                f"search: {self.path}: ignored {len(dropped)} evaluation(s) with out-of-range metrics "
                f"(they are evaluated again), first {dropped[0]}"
            )
        return cache

    def __len__(self) -> int:
        return int(self._execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])


def run_journaled(
    strategy: Strategy,
    evaluate: Callable[[Arch], Mapping[str, float]],
    journal: Journal,
    key: str,
    space: SearchSpace | None = None,
    on_evaluated: Callable[[Arch, Metrics], None] | None = None,
) -> SearchResult:
    """`run_search` with the journal as cache and every new evaluation recorded (generation,
    seconds) as soon as it is done: re-running after a crash evaluates only what is missing."""
    seconds: dict[Arch, float] = {}

    def timed(arch: Arch) -> Mapping[str, float]:
        start = time.perf_counter()
        metrics = evaluate(arch)
        seconds[arch] = time.perf_counter() - start
        return metrics

    def record(arch: Arch, metrics: Metrics) -> None:
        step = getattr(strategy, "generation", getattr(strategy, "told", None))
        journal.record(key, arch, metrics, step if isinstance(step, int) else None, seconds.pop(arch, None))
        if on_evaluated is not None:
            on_evaluated(arch, metrics)

    return run_search(strategy, timed, record, journal.lookup(key, space))


# -- what a search's journal was made for ------------------------------------------------------------
_IDENTITY_SCHEMA = "CREATE TABLE IF NOT EXISTS search_identity (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
IDENTITY_FIELDS = {
    "evaluated": "supernet, table or benchmark (its content hash)",
    "space": "search space",
    "constraints": "constraints",
    "evaluation": "evaluation settings",
    "strategy": "strategy",
}


def search_identity(
    key: str, space: SearchSpace, constraints: str, evaluation: Mapping[str, Any] | None, strategy: str | None = None
) -> dict:
    """What a search's evaluations and result depend on: a resume must match it (`check_resumable`). The
    strategy too: its state is rebuilt by replaying the journal, which another strategy would misread."""
    return {
        "evaluated": key.rsplit(":", 1)[0] if evaluation is not None else key,
        "space": space.fingerprint(),
        "constraints": constraints,
        "evaluation": dict(evaluation) if evaluation is not None else None,
        "strategy": strategy,
    }


def write_identity(journal: Journal, identity: Mapping[str, Any]) -> None:
    """Record the identity of the search that owns `journal` (kept as first written)."""
    journal._execute(_IDENTITY_SCHEMA)
    for name, value in identity.items():
        journal._execute("INSERT OR IGNORE INTO search_identity VALUES (?, ?)", (name, json.dumps(value)))


def check_resumable(path: Path, identity: Mapping[str, Any], key: str) -> None:
    """Refuse (SearchError, nothing written) to resume the search journaled at `path` with another
    supernet, space, constraints or evaluation settings than it was made with: its scores and result
    would mix two searches. A journal without a recorded identity (older) is checked by its keys."""
    recorded, keys = _read_identity(path)
    if recorded is None:
        if any(k != key for k in keys):
            _refuse(path, "its journal holds evaluations of another supernet, table or evaluation settings")
        return
    for name, what in IDENTITY_FIELDS.items():
        if name in recorded and recorded[name] != identity.get(name):
            _refuse(path, f"it was made with other {what} ({_difference(recorded[name], identity.get(name))})")


def _refuse(path: Path, why: str) -> None:
    raise SearchError(
        f"cannot resume the search in {path.parent}: {why}; resume with the same settings or choose "
        f"another --run-dir (nothing was written)"
    )


def _difference(before: Any, now: Any) -> str:
    if isinstance(before, dict) and isinstance(now, dict):
        changed = [
            f"eval.{k} {before.get(k)!r} -> {now.get(k)!r}" for k in sorted(before) if before.get(k) != now.get(k)
        ]
        changed += [f"eval.{k} -> {now[k]!r}" for k in sorted(set(now) - set(before))]
        return ", ".join(changed) or "they differ"
    if before is None or now is None:
        return "a supernet search vs a table or benchmark search"
    text = lambda v: str(v)[:80]  # noqa: E731
    return f"{text(before)} -> {text(now)}"


def _read_identity(path: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """(recorded identity or None, the journal's cache keys), read without writing to the file."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    except sqlite3.Error as e:
        raise SearchError(f"{path}: not a usable search journal ({e})") from None
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        keys = (
            [r[0] for r in conn.execute("SELECT DISTINCT cache_key FROM evaluations")]
            if "evaluations" in tables
            else []
        )
        if "search_identity" not in tables:
            return None, keys
        rows = conn.execute("SELECT name, value FROM search_identity").fetchall()
        return {str(name): json.loads(value) for name, value in rows}, keys
    except (sqlite3.Error, ValueError) as e:
        raise SearchError(f"{path}: not a usable search journal ({e})") from None
    finally:
        conn.close()
