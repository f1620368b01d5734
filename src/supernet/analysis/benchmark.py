"""Published benchmarks as ranking ground truth: NAS-Bench-Macro (Su et al., CVPR 2021).

The benchmark file is read as untrusted input: every problem (not JSON, missing keys, archs the
space does not know, NaN or non-numbers, runs of unequal count) is a one-line `ConfigError`.

    {arch: {"test_acc": [a1, a2, a3], "mean_acc": m, "std": s, "params": p, "flops": f}}

Accuracies are percentages in the file and fractions here. Besides the archs' mean accuracy the
module gives what every ranking result should be read against:

- `run_consistency`: Kendall tau between the benchmark's own independent trainings (run i vs run j),
  the ceiling a predictor can be expected to reach against one run;
- `zero_cost`: Kendall tau of ranking by MACs alone and by parameters alone (a supernet that does
  not beat these adds nothing);
- `stratified_sample`: K archs spread over the benchmark's accuracy range (one per accuracy
  quantile stratum, seeded), so a small sample covers bad, middling and good archs alike.

A pruned (restricted) space reads the file in its full space's notation (the benchmark's digits
index the full space's choices) and keeps the archs it contains; `Benchmark.outside` counts the
others, left out of samples, arch lists and reference numbers alike.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any

from supernet.analysis import metrics as M
from supernet.core.errors import ConfigError, SpaceError
from supernet.core.io import no_constants, unique_keys
from supernet.space import Arch, SearchSpace, create_space

BENCHMARKS = {"nas-bench-macro": "nas-bench-macro"}  # benchmark name -> the space it is defined on
MAX_FILE_BYTES = 256 << 20  # the published file is ~1 MB
REQUIRED_KEYS = ("test_acc", "mean_acc", "params", "flops")


@dataclass(frozen=True)
class BenchmarkEntry:
    runs: tuple[float, ...]  # accuracy (fraction) of each independent training
    mean: float  # the file's mean_acc (fraction)
    params: int
    flops: int


@dataclass(frozen=True)
class Benchmark:
    name: str
    path: str
    entries: dict[Arch, BenchmarkEntry]  # the archs of the file inside the space it was loaded for
    outside: int = 0  # archs of the file the space does not contain (pruned choices), left out

    @property
    def num_runs(self) -> int:
        return len(next(iter(self.entries.values())).runs)

    def subset(self, archs: Sequence[Arch]) -> list[BenchmarkEntry]:
        missing = [a for a in archs if a not in self.entries]
        if missing:
            raise ConfigError(f"arch '{missing[0]}' is not in benchmark {self.path} ({len(missing)} such archs)")
        return [self.entries[a] for a in archs]

    def accuracy(self, archs: Sequence[Arch]) -> list[float]:
        """The mean benchmark accuracy (fraction) of each arch."""
        return [e.mean for e in self.subset(archs)]


def check_benchmark_name(name: str, space: SearchSpace | None = None) -> None:
    if name not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark '{name}'; known: {', '.join(sorted(BENCHMARKS))}")
    if space is not None and space.name != BENCHMARKS[name]:
        raise ConfigError(f"benchmark '{name}' is defined on space '{BENCHMARKS[name]}', not '{space.name}'")


def load_benchmark(name: str, path: str | Path, space: SearchSpace) -> Benchmark:
    """Read and validate a benchmark file for `space`; a pruned space keeps the archs it contains."""
    check_benchmark_name(name, space)
    full = full_space(space)
    path = Path(path)
    raw = _read_json(path)
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"benchmark {path}: expected a non-empty JSON object {{arch: {{...}}}}")
    entries: dict[Arch, BenchmarkEntry] = {}
    for key, value in raw.items():
        arch = _parse_key(path, key, full)
        if arch in entries:
            raise ConfigError(f"benchmark {path}: arch '{key}' is listed twice")
        entries[arch] = _parse_entry(path, key, value)
    runs = {len(e.runs) for e in entries.values()}
    if len(runs) != 1:
        raise ConfigError(f"benchmark {path}: archs have different numbers of runs in 'test_acc' ({sorted(runs)})")
    inside = {arch: entry for arch, entry in entries.items() if space.contains(arch)}
    if not inside:
        raise ConfigError(
            f"benchmark {path}: none of its {len(entries)} archs lies in the space (pruned to "
            f"{space.size} archs of space '{space.name}')"
        )
    return Benchmark(name, str(path), inside, outside=len(entries) - len(inside))


def full_space(space: SearchSpace) -> SearchSpace:
    """The registered space `space` was pruned from (itself when not pruned): its indices are the
    benchmark's notation."""
    try:
        full = create_space(space.name, **dict(space.options))
    except (SpaceError, TypeError, ValueError) as e:
        raise ConfigError(f"cannot rebuild space '{space.name}' from its options: {e}") from None
    try:
        same = full.restrict([layer.choices for layer in space.layers]) == space
    except (SpaceError, ValueError):
        same = False
    if not same:
        raise ConfigError(f"space '{space.name}' is not the registered space or a pruning of it")
    return full


# a key given twice is refused (json.loads keeps the last one silently)
DUPLICATE_KEYS = unique_keys("duplicate key {key!r}; each arch (and field) may appear once", cut=40)


def _read_json(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"benchmark {path} is larger than {MAX_FILE_BYTES >> 20} MB; is it the right file?")
        return json.loads(path.read_text(), parse_constant=no_constants, object_pairs_hook=DUPLICATE_KEYS)
    except OSError as e:
        raise ConfigError(f"cannot read benchmark {path}: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ConfigError(f"benchmark {path} is not valid JSON: {str(e).splitlines()[0]}") from None


def _parse_key(path: Path, key: str, space: SearchSpace) -> Arch:
    if not (len(key) == space.num_layers and key.isascii() and key.isdigit()):
        raise ConfigError(
            f"benchmark {path}: unknown arch '{key[:40]}'; expected {space.num_layers} digits "
            f"(one choice index per layer of space '{space.name}')"
        )
    try:
        return space.parse_arch(key)
    except SpaceError as e:
        raise ConfigError(f"benchmark {path}: unknown arch '{key}': {e}") from None


def _parse_entry(path: Path, key: str, value: Any) -> BenchmarkEntry:
    where = f"benchmark {path}: arch '{key}'"
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected an object with {', '.join(REQUIRED_KEYS)}")
    missing = [k for k in REQUIRED_KEYS if k not in value]
    if missing:
        raise ConfigError(f"{where}: missing key '{missing[0]}' (needs {', '.join(REQUIRED_KEYS)})")
    runs = value["test_acc"]
    if not isinstance(runs, list) or not runs:
        raise ConfigError(f"{where}: 'test_acc' must be a non-empty list of accuracies in percent")
    accs = tuple(_percent(where, "test_acc", v) for v in runs)
    return BenchmarkEntry(
        runs=accs,
        mean=_percent(where, "mean_acc", value["mean_acc"]),
        params=_count(where, "params", value["params"]),
        flops=_count(where, "flops", value["flops"]),
    )


def _percent(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: '{key}' must be a finite number, got {str(value)[:40]}")
    if not 0.0 <= value <= 100.0:
        raise ConfigError(f"{where}: '{key}' {value:g} is outside [0, 100] (percent)")
    return float(value) / 100.0


def _count(where: str, key: str, value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or value != int(value)
    ):
        raise ConfigError(f"{where}: '{key}' must be a non-negative integer, got {str(value)[:40]}")
    return int(value)


# -- arch lists --------------------------------------------------------------------------------------
def stratified_sample(bench: Benchmark, k: int, seed: int = 0) -> list[Arch]:
    """K archs, one drawn uniformly from each of K equal-count strata of the archs sorted by mean
    accuracy (ties broken by arch name); returned in stratum order, worst first. Deterministic in seed."""
    n = len(bench.entries)
    if not 1 <= k <= n:
        raise ConfigError(f"--sample must be in 1..{n} (the benchmark's archs in the space), got {k}")
    ordered = sorted(bench.entries, key=lambda a: (bench.entries[a].mean, a.to_string()))
    rng = random.Random(f"benchmark-stratified:{seed}")
    bounds = [round(i * n / k) for i in range(k + 1)]
    return [ordered[rng.randrange(lo, hi)] for lo, hi in pairwise(bounds)]


# -- reference rankings --------------------------------------------------------------------------------
def run_consistency(bench: Benchmark, archs: Sequence[Arch]) -> dict[str, float]:
    """Kendall tau between each pair of the benchmark's runs on `archs` ('1v2', '1v3', '2v3', 'mean')."""
    entries = bench.subset(archs)
    out = {
        f"{i + 1}v{j + 1}": M.kendall_tau([e.runs[i] for e in entries], [e.runs[j] for e in entries])
        for i, j in combinations(range(bench.num_runs), 2)
    }
    values = [v for v in out.values() if not math.isnan(v)]
    out["mean"] = sum(values) / len(values) if values else float("nan")
    return out


def zero_cost(bench: Benchmark, archs: Sequence[Arch]) -> dict[str, float]:
    """Kendall tau against the mean accuracy of ranking by MACs only, by parameters only, by depth only."""
    entries = bench.subset(archs)
    return M.zero_cost_kendall(
        [e.flops for e in entries],
        [e.params for e in entries],
        [e.mean for e in entries],
        [M.depth(a.ops) for a in archs],
    )


def reference(bench: Benchmark, archs: Sequence[Arch]) -> dict[str, Any]:
    """Everything a ranking result is reported beside: the ceiling and the zero-cost bars."""
    return {
        "benchmark": bench.name,
        "benchmark_file": bench.path,
        "ceiling_kendall": run_consistency(bench, archs),
        "zero_cost_kendall": zero_cost(bench, archs),
    }


def digits(arch: Arch, space: SearchSpace) -> str:
    """An arch in the benchmark's notation (one choice index per layer of the full space)."""
    return "".join(str(i) for i in full_space(space).indices(arch))


# -- cost model check -----------------------------------------------------------------------------------
def cost_mismatches(
    bench: Benchmark, space: SearchSpace, archs: Sequence[Arch] | None = None, identity: str = "skip"
) -> list[dict[str, Any]]:
    """Archs whose MACs/params from our cost model differ from the file's flops/params."""
    from supernet.cost import CostTable

    table = CostTable.build(space, identity)
    out = []
    for arch in archs if archs is not None else list(bench.entries):
        entry, cost = bench.entries[arch], table.query(arch)
        if int(cost.macs) != entry.flops or int(cost.params) != entry.params:
            out.append(
                {
                    "arch": digits(arch, space),
                    "macs": int(cost.macs),
                    "flops": entry.flops,
                    "params": int(cost.params),
                    "file_params": entry.params,
                }
            )
    return out


# -- a benchmark as the ground truth of `supernet rank` / `search --table` -----------------------------
@dataclass(frozen=True)
class BenchmarkSpec:
    """What the CLI's --benchmark, --benchmark-file, --sample/--seed or --archs ask for."""

    name: str
    path: str
    sample: int | None = None
    seed: int = 0
    archs_file: str | None = None

    def describe(self) -> str:
        """The archs asked for, as a person wrote them (for messages)."""
        chosen = f"--archs {self.archs_file}" if self.archs_file is not None else f"--sample {self.sample}"
        return f"{chosen} of benchmark {self.name} ({self.path})"

    def archs(self, bench: Benchmark, space: SearchSpace) -> list[Arch]:
        from supernet.analysis.groundtruth import read_arch_file

        if (self.sample is None) == (self.archs_file is None):
            raise ConfigError("with --benchmark give exactly one of --sample K (stratified, seeded) or --archs FILE")
        if self.archs_file is not None:
            archs = read_arch_file(full_space(space), self.archs_file)  # indices: the benchmark's digits
            for number, arch in enumerate(archs, 1):
                if not space.contains(arch):
                    raise ConfigError(f"{self.archs_file}: entry {number}: {_outside(space, arch)}")
            bench.subset(archs)  # every listed arch must be in the benchmark
            return archs
        return stratified_sample(bench, int(self.sample), self.seed)  # type: ignore[arg-type]


def _outside(space: SearchSpace, arch: Arch) -> str:
    """Why `arch` is not in (pruned) `space`: its first layer whose op was pruned."""
    i, layer, op = next(
        (i, lay, op) for i, (lay, op) in enumerate(zip(space.layers, arch.ops)) if op not in lay.choices
    )
    return (
        f"arch '{digits(arch, space)}' ({arch}) is outside the supernet's space: layer {i} has no "
        f"'{op}' (it keeps {', '.join(layer.choices)})"
    )


def canonical(arch: Arch, space: SearchSpace) -> Arch:
    """NAS-Bench-Macro's form of an arch (the one the benchmark trained): `SearchSpace.canonical`."""
    return space.canonical(arch)


class BenchmarkEvaluator:
    """`search --table` on a benchmark: an arch's mean accuracy, or that of the arch the benchmark
    trained for it (its `canonical` form) when the arch itself is not in the file."""

    def __init__(self, bench: Benchmark, space: SearchSpace) -> None:
        self.bench, self.space = bench, space
        self.by_canonical = {canonical(a, space): e for a, e in bench.entries.items()}

    def lookup(self, arch: Arch) -> float | None:
        """The arch's mean accuracy, or None where the file holds neither it nor any of its equivalent
        forms (e.g. one of the 50 archs the shared copy of NAS-Bench-Macro withholds)."""
        entry = self.bench.entries.get(arch) or self.by_canonical.get(canonical(arch, self.space))
        return None if entry is None else entry.mean

    def evaluate(self, arch: Arch) -> float:
        value = self.lookup(arch)
        if value is None:
            from supernet.core.errors import SearchError

            raise SearchError(
                f"arch '{self.space.format_arch(arch)}' (and its equivalent forms) is not in "
                f"benchmark {self.bench.path}"
            )
        return value
