"""Ground truth for ranking studies: train a list of archs stand-alone and tabulate their accuracies.

Layout of a ground-truth run directory R:

    R/config.yaml             the config used
    R/archs.txt               the arch list, one per line, in index order (fixes the indices)
    R/archs/<index>-<hash>/   one stand-alone training run per arch (checkpoints, metrics.jsonl,
                              result.json once finished)
    R/groundtruth.csv         arch,accuracy,test_accuracy,macs,params,seconds (accuracy = val;
                              readable by `supernet.search.TableEvaluator`)

Finished archs (result.json present) are skipped on a re-run and unfinished ones resume from their
last checkpoint. `shard=(i, n)` trains archs whose index % n == i, so n processes can share one R;
each arch folder is locked while trained, and the CSV is re-assembled (atomically, under a file
lock) from whatever per-arch results exist after every arch.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from supernet.core.errors import ConfigError, SpaceError
from supernet.core.io import atomic_write_text
from supernet.core.rundir import RESULT
from supernet.space import Arch, SearchSpace

CSV_NAME = "groundtruth.csv"
ARCHS_NAME = "archs.txt"
COLUMNS = ("arch", "accuracy", "test_accuracy", "macs", "params", "seconds")


# -- arch lists ------------------------------------------------------------------------------------
def sample_archs(space: SearchSpace, k: int, seed: int = 0) -> list[Arch]:
    """k distinct uniformly sampled archs, in draw order (deterministic in `seed`)."""
    if k < 1:
        raise ConfigError(f"--sample must be >= 1, got {k}")
    if k > space.size:
        raise ConfigError(f"cannot sample {k} distinct archs from a space of {space.size}")
    rng = random.Random(f"groundtruth:{seed}")
    out: list[Arch] = []
    seen: set[Arch] = set()
    while len(out) < k:
        arch = space.sample(rng)
        if arch not in seen:
            seen.add(arch)
            out.append(arch)
    return out


def sample_archs_by_identities(space: SearchSpace, k: int, seed: int = 0) -> list[Arch]:
    """k distinct archs spread evenly over the number of `id` layers (0 .. all but one).

    Drawn round-robin over the counts, so any prefix of the list covers every depth; within a count
    the `id` layers and the other ops are uniform. In spaces with an identity choice a uniform
    sample puts about L/n identities in every arch, and at small scale such archs differ by less
    than the seed noise of stand-alone training; this spreads the ground truth over depths."""
    can_id = [i for i, layer in enumerate(space.layers) if "id" in layer.choices]
    if not can_id:
        raise ConfigError(f"space '{space.name}' has no `id` choice to spread a sample over")
    if k < 1:
        raise ConfigError(f"--sample must be >= 1, got {k}")
    rng = random.Random(f"stratified:{seed}")
    counts = list(range(len(can_id)))  # leave out the all-identity net (stem + head only)
    out: list[Arch] = []
    seen: set[Arch] = set()
    for _ in range(100 * k):
        if len(out) == k:
            break
        ids = set(rng.sample(can_id, counts[len(out) % len(counts)]))
        arch = Arch(
            tuple(
                "id" if i in ids else rng.choice([c for c in layer.choices if c != "id"])
                for i, layer in enumerate(space.layers)
            )
        )
        if arch not in seen:
            seen.add(arch)
            out.append(arch)
    if len(out) < k:
        raise ConfigError(f"could not draw {k} distinct archs spread over identity counts (got {len(out)})")
    return out


def read_arch_file(space: SearchSpace, path: str | Path) -> list[Arch]:
    """Archs from a text file (one per line; `#` comments) or a CSV whose first column is `arch`."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read arch list {path}: {e.strerror or e}") from None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if lines and lines[0].split(",")[0].strip() == "arch":
        lines = [row[0] for row in csv.reader(lines[1:]) if row]
    archs: list[Arch] = []
    seen: dict[Arch, int] = {}
    for number, line in enumerate(lines, 1):
        try:
            arch = space.parse_arch(line)
        except SpaceError as e:
            raise ConfigError(f"{path}: entry {number}: {e}") from None
        if arch in seen:
            raise ConfigError(f"{path}: entry {number}: arch '{arch}' already listed as entry {seen[arch]}")
        seen[arch] = number
        archs.append(arch)
    if not archs:
        raise ConfigError(f"{path}: no archs listed")
    return archs


def parse_shard(text: str | None) -> tuple[int, int]:
    """'i/n' with 0 <= i < n (0-based); None -> (0, 1)."""
    if text is None:
        return 0, 1
    i, sep, n = str(text).partition("/")
    try:
        shard = (int(i), int(n))
    except ValueError:
        shard = (-1, 0)
    if not sep or not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise ConfigError(f"--shard {text!r} must look like i/n with 0 <= i < n (e.g. 0/4)")
    return shard


def arch_dirname(index: int, arch: Arch) -> str:
    return f"{index:04d}-{hashlib.sha1(arch.to_string().encode()).hexdigest()[:8]}"


def is_finished(folder: Path) -> bool:
    try:
        data = json.loads((folder / RESULT).read_text())
        return "val_acc" in data and "macs" in data  # macs: added after training, so the result is complete
    except (OSError, ValueError):
        return False


# -- the table ---------------------------------------------------------------------------------------
def read_results(run_dir: Path) -> list[dict[str, Any]]:
    """The finished per-arch results, in index order (unreadable or partial files are ignored)."""
    rows = []
    for path in sorted((Path(run_dir) / "archs").glob("*/result.json")):
        try:
            data = json.loads(path.read_text())
            index = int(data.get("index", path.parent.name.split("-")[0]))
            rows.append(
                {
                    "index": index,
                    "arch": data["arch"],
                    "accuracy": float(data["val_acc"]),
                    "test_accuracy": float(data["test_acc"]),
                    "macs": data.get("macs", ""),
                    "params": data.get("params", ""),
                    "seconds": float(data.get("seconds", 0.0)),
                }
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(rows, key=lambda r: r["index"])


def assemble_csv(run_dir: Path) -> int:
    """Rewrite R/groundtruth.csv from the per-arch results (atomic; serialised by a file lock)."""
    run_dir = Path(run_dir)
    with _file_lock(run_dir / ".groundtruth.lock"):
        rows = read_results(run_dir)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow(
                [
                    r["arch"],
                    f"{r['accuracy']:.6f}",
                    f"{r['test_accuracy']:.6f}",
                    r["macs"],
                    r["params"],
                    f"{r['seconds']:.1f}",
                ]
            )
        atomic_write_text(run_dir / CSV_NAME, buf.getvalue())
    return len(rows)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_groundtruth(path: str | Path, space: SearchSpace) -> tuple[list[Arch], list[float], list[float | None]]:
    """(archs, val accuracies, test accuracies or None) from a ground-truth CSV in file order."""
    from supernet.search.evaluator import TableEvaluator

    table = TableEvaluator(path, space)
    archs = list(table.rows)
    return (archs, [table.rows[a]["accuracy"] for a in archs], [table.rows[a].get("test_accuracy") for a in archs])
