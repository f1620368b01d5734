"""The `groundtruth` verb: train a list of archs stand-alone and tabulate their accuracies.

The run directory's layout and the readers of its files are in `supernet.analysis.groundtruth`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from supernet.analysis.groundtruth import (
    ARCHS_NAME,
    CSV_NAME,
    arch_dirname,
    assemble_csv,
    is_finished,
    read_arch_file,
)
from supernet.config.schema import Config, save_config
from supernet.core.errors import ConfigError
from supernet.core.io import atomic_write_text
from supernet.core.logs import get_logger
from supernet.core.rundir import CONFIG, RESULT
from supernet.ops.standalone import retrain_mode
from supernet.space import Arch, SearchSpace

logger = get_logger(__name__)


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
) -> dict[str, Any]:
    """Train this shard's archs stand-alone (skipping finished ones; one INFO line per trained arch) and
    rebuild the CSV.

    Returns {"trained": [...], "skipped": [...], "busy": [...], "csv": path, "rows": n}."""
    from supernet.core.rundir import RunLock, RunLocked
    from supernet.cost import CostTable
    from supernet.jobs.retrain import train_standalone
    from supernet.runs.build import build_space, load_data

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
        if is_finished(folder):
            done["skipped"].append(arch.to_string())
            continue
        try:
            with RunLock(folder):
                if is_finished(folder):  # finished by another process meanwhile
                    done["skipped"].append(arch.to_string())
                    continue
                result = train_standalone(cfg, folder, space, arch, identity, resume=True)
                if not tables:
                    tables.append(CostTable.build(space, retrain_mode(space, identity), cache_dir=run_dir))
                cost = tables[0].query(arch)
                result.update(index=index, macs=cost.macs, params=cost.params)
                atomic_write_text(folder / RESULT, json.dumps(result, indent=1))
        except RunLocked:
            done["busy"].append(arch.to_string())
            continue
        done["trained"].append(arch.to_string())
        rows = assemble_csv(run_dir)
        logger.info(
            f"[{count}/{len(mine)}] arch {index} {arch}: val {result['val_acc']:.4f} test "
            f"{result['test_acc']:.4f} ({result['seconds']:.0f}s; {rows} archs in {CSV_NAME})"
        )
    rows = assemble_csv(run_dir)
    return {**done, "csv": str(run_dir / CSV_NAME), "rows": rows, "total": len(archs)}
