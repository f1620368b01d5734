"""A seeded tiny train, search and pipeline, reduced to one hash per output file: the proof that a refactor
changed no behaviour (issue 27). Wall-clock fields (`seconds`, `images_per_s`, a report's `total time`
line, ...) and run-folder paths are the only things left out; every other byte of `metrics.jsonl`,
`result.json` and `summary.json` counts.

    PYTHONPATH=src python benchmarks/behaviour_fingerprint.py --save before.json   # on the old code
    PYTHONPATH=src python benchmarks/behaviour_fingerprint.py --check before.json  # on the new: exit 1 if any differs
    PYTHONPATH=src python benchmarks/behaviour_fingerprint.py --check benchmarks/behaviour_fingerprint.json

`behaviour_fingerprint.json` holds the fingerprints of the newest main that changed what a run writes (issue 27's
layout move kept 6c377c6's; since, `result.json` records `evaluation.twins/bn/metric`): refresh it with --save when
a change means to alter the output, and say so in the commit. The hashes hold for the machine that saved them:
another CPU rounds floats differently (2026-12-07, a fresh machine: every file differed at the very commit that
saved them), so there compare the old and new commits yourself (--save on the old, --check on the new).
    PYTHONPATH=src python benchmarks/behaviour_fingerprint.py --smoke              # one tiny train (the suite's check)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VOLATILE = ("seconds", "images_per_s", "time", "wall", "elapsed", "started", "finished", "date")

TINY = [
    "data.train_limit=640",
    "data.val_size=128",
    "space.options={width: 0.25, head_channels: 32, layers_per_stage: [1,2,1,2,1,1], stem_stride: 2}",
    "train.epochs=2",
    "train.batch_size=64",
    "train.progress=false",
    "train.seed=0",
    "eval.recal_batches=2",
    "eval.recal_batch_size=64",
    "eval.val_batch_size=128",
    "search.options={population: 6, iterations: 2, topk: 3}",  # 6c377c6: search.population=6 ... (same values)
    "search.max_macs='400k'",
    "standalone.epochs=1",
    "standalone.batch_size=64",
    "standalone.progress=false",
]


def strip(value: object, run_dirs: tuple[str, ...]) -> object:
    """The value without wall-clock fields, with the run folders' paths replaced by a fixed name."""
    if isinstance(value, dict):
        return {k: strip(v, run_dirs) for k, v in value.items() if not any(w in k.lower() for w in VOLATILE)}
    if isinstance(value, list):
        return [strip(v, run_dirs) for v in value]
    if isinstance(value, str):
        for d in run_dirs:
            value = value.replace(d, "RUN")
        lines = [line for line in value.split("\n") if not re.search(r"\btime\b", line)]
        return "\n".join(re.sub(r"\b\d+(\.\d+)?s\b", "Ns", line) for line in lines)  # "(12 archs in 4s)"
    return value


def digest(path: Path, run_dirs: tuple[str, ...]) -> str:
    if path.suffix == ".jsonl":
        rows = [strip(json.loads(line), run_dirs) for line in path.read_text().splitlines() if line.strip()]
    else:
        rows = [strip(json.loads(path.read_text()), run_dirs)]
    text = "\n".join(json.dumps(r, sort_keys=True) for r in rows)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def supernet(*args: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "supernet.cli", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"supernet {args[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")


def fingerprints(work: Path, smoke: bool) -> dict[str, str]:
    smoke_sets = ["train.epochs=1", "train.max_steps_per_epoch=2"] if smoke else []
    sets = [a for item in (TINY + smoke_sets) for a in ("--set", item)]
    train, search, pipe = work / "train", work / "search", work / "pipeline"
    dirs = (str(pipe), str(search), str(train))
    supernet("train", "--run-dir", str(train), *sets)
    out = {"train/metrics.jsonl": digest(train / "metrics.jsonl", dirs)}
    if smoke:
        return out
    supernet("search", "--supernet", str(train), "--run-dir", str(search), *sets)
    supernet("pipeline", "--run-dir", str(pipe), *sets)
    out["search/result.json"] = digest(search / "result.json", dirs)
    out["pipeline/metrics.jsonl"] = digest(pipe / "supernet" / "metrics.jsonl", dirs)
    out["pipeline/summary.json"] = digest(pipe / "summary.json", dirs)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--save", help="write the fingerprints to this JSON file")
    p.add_argument("--check", help="compare with fingerprints saved earlier; exit 1 if any differs")
    p.add_argument("--smoke", action="store_true", help="one two-step tiny training only (seconds)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        found = fingerprints(Path(tmp), args.smoke)
    for name, value in found.items():
        print(f"{name}: {value}")
    if args.save:
        Path(args.save).write_text(json.dumps(found, indent=1) + "\n")
    if args.check:
        saved = json.loads(Path(args.check).read_text())
        differ = [k for k in saved if saved[k] != found.get(k)]
        print("identical" if not differ else f"DIFFERENT: {', '.join(differ)}")
        sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
