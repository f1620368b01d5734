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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from supernet.config import Config, save_config
from supernet.errors import ConfigError, SpaceError
from supernet.io import atomic_write_text
from supernet.rundir import CONFIG, RESULT
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


def fix_arch_list(run_dir: Path, archs: Sequence[Arch] | None, space: SearchSpace) -> list[Arch]:
    """The run's arch list: write R/archs.txt the first time, check it matches afterwards.

    With `archs=None` the list already in R/archs.txt is used (so a re-run needs no arguments)."""
    path = Path(run_dir) / ARCHS_NAME
    if path.exists():
        existing = read_arch_file(space, path)
        if archs is not None and list(archs) != existing:
            raise ConfigError(
                f"{run_dir} already holds a ground truth for a different arch list ({path}); use another --run-dir"
            )
        return existing
    if archs is None:
        raise ConfigError(f"give --archs FILE or --sample K (no {path} to resume from)")
    atomic_write_text(path, "".join(a.to_string() + "\n" for a in archs))
    return list(archs)


# -- training ----------------------------------------------------------------------------------------
def run_groundtruth(
    cfg: Config,
    run_dir: Path,
    archs: Sequence[Arch] | None,
    shard: tuple[int, int] = (0, 1),
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train this shard's archs stand-alone (skipping finished ones) and rebuild the CSV.

    Returns {"trained": [...], "skipped": [...], "busy": [...], "csv": path, "rows": n}."""
    from supernet.assemble import build_space, load_data
    from supernet.cost import CostTable
    from supernet.retrain import train_standalone
    from supernet.rundir import RunLock, RunLocked

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    space = build_space(cfg, load_data(cfg))
    identity = cfg.supernet.identity
    archs = fix_arch_list(run_dir, archs, space)
    save_config(cfg, run_dir / CONFIG)
    tables: list[CostTable] = []  # built (or read from R's cache) on first use
    done: dict[str, list[str]] = {"trained": [], "skipped": [], "busy": []}
    i, n = shard
    mine = [(index, arch) for index, arch in enumerate(archs) if index % n == i]
    for count, (index, arch) in enumerate(mine, 1):
        folder = run_dir / "archs" / arch_dirname(index, arch)
        if _finished(folder):
            done["skipped"].append(arch.to_string())
            continue
        try:
            with RunLock(folder):
                if _finished(folder):  # finished by another process meanwhile
                    done["skipped"].append(arch.to_string())
                    continue
                result = train_standalone(cfg, folder, space, arch, identity, resume=True)
                if not tables:
                    tables.append(CostTable.build(space, identity, cache_dir=run_dir))
                cost = tables[0].query(arch)
                result.update(index=index, macs=cost.macs, params=cost.params)
                atomic_write_text(folder / RESULT, json.dumps(result, indent=1))
        except RunLocked:
            done["busy"].append(arch.to_string())
            continue
        done["trained"].append(arch.to_string())
        rows = assemble_csv(run_dir)
        if log:
            log(
                f"[{count}/{len(mine)}] arch {index} {arch}: val {result['val_acc']:.4f} test "
                f"{result['test_acc']:.4f} ({result['seconds']:.0f}s; {rows} archs in {CSV_NAME})"
            )
    rows = assemble_csv(run_dir)
    return {**done, "csv": str(run_dir / CSV_NAME), "rows": rows, "total": len(archs)}


def _finished(folder: Path) -> bool:
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
