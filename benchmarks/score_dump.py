"""Write the scores a supernet run's evaluation cache holds as one small JSON file, so a study's numbers outlive
the supernet: `predictor_design.py --scores FILE` refits and re-picks from it in seconds, with no checkpoint.

Nothing is scored here: the file holds exactly the archs `supernet rank`, `search` or the benchmarks scored
under the evaluation settings given (the run's own config, then `--set`; the same key those commands use).

    PYTHONPATH=src python benchmarks/score_dump.py --supernet RUN --out scores.json [--set eval.metric=loss]
    PYTHONPATH=src python benchmarks/score_dump.py --smoke --out DIR   # a tiny supernet trained here (seconds)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _smoke import smoke_macro_supernet  # noqa: E402

from supernet.core.io import atomic_write_text
from supernet.runs.build import eval_settings
from supernet.runs.load import default_config, load_supernet, trained_config
from supernet.search.objectives import Metrics
from supernet.space import Arch, SearchSpace, create_space
from supernet.space.opnames import IDENTITY_MODES

FORMAT = "supernet-scores/1"
MAX_BYTES = 64 << 20  # a dump of every arch of a 6,561-arch space is ~0.5 MB
SPACE_KEYS = ("space", "space_options", "space_fingerprint", "identity")


def cached_scores(cfg: Any, supernet: Path) -> tuple[dict[str, Any], dict[Arch, Metrics]]:
    """The supernet's space description and every arch its evaluation cache holds under `cfg`'s settings."""
    from supernet.jobs.rank import evaluation_cache
    from supernet.search import Journal

    net, meta = load_supernet(supernet)
    cfg = trained_config(cfg, meta)
    head = {
        "format": FORMAT,
        "space": meta["space"],
        "space_options": meta["space_options"],
        "space_fingerprint": net.space.fingerprint(),
        "identity": net.options.identity,
        "supernet": str(supernet),
        "evaluation": eval_settings(cfg),
    }
    path, key = evaluation_cache(cfg, supernet)
    if path is None or not path.is_file():
        return head, {}
    with Journal(path) as journal:
        return head, journal.lookup(key, net.space)


def dump(head: dict[str, Any], scores: dict[Arch, Metrics]) -> str:
    rows = {a.to_string(): m["accuracy"] for a, m in sorted(scores.items(), key=lambda kv: kv[0].ops)}
    return json.dumps({**head, "scores": rows}, indent=0) + "\n"


def load_dump(path: Path) -> tuple[SearchSpace, str, dict[Arch, float]]:
    """(space, identity, arch -> score) of a dump; a file that is not one raises ValueError naming what is wrong."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.stat().st_size > MAX_BYTES:
        raise ValueError(f"{path}: larger than {MAX_BYTES >> 20} MB, not a score dump")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a score dump (expected format {FORMAT!r})")
    missing = [k for k in (*SPACE_KEYS, "scores") if k not in data]
    if missing or not isinstance(data["scores"], dict) or not isinstance(data["space_options"], dict):
        raise ValueError(f"{path}: a score dump needs {', '.join(SPACE_KEYS)} and a scores object")
    try:
        space = create_space(data["space"], **data["space_options"])
    except Exception as e:  # noqa: BLE001 - an unknown space or option of an untrusted file is one line
        raise ValueError(f"{path}: its space cannot be built ({str(e)[:200]})") from None
    if space.fingerprint() != data["space_fingerprint"]:
        raise ValueError(f"{path}: made for another version of space {space.name!r} (fingerprint differs)")
    if data["identity"] not in IDENTITY_MODES:
        raise ValueError(f"{path}: identity {str(data['identity'])[:40]!r} is not one of {', '.join(IDENTITY_MODES)}")
    return space, data["identity"], _parsed_scores(path, space, data["scores"])


def _parsed_scores(path: Path, space: SearchSpace, rows: dict[str, Any]) -> dict[Arch, float]:
    scores = {}
    for text, value in rows.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{path}: the score of {str(text)[:60]} is {str(value)[:20]}, expected a finite number")
        try:
            scores[space.parse_arch(text)] = float(value)
        except Exception as e:  # noqa: BLE001 - an arch of another space
            raise ValueError(f"{path}: arch {str(text)[:60]} does not fit space {space.name} ({e})") from None
    return scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--supernet", help="a trained supernet run directory (required unless --smoke)")
    p.add_argument("--out", required=True, help="the JSON file (with --smoke: a folder)")
    p.add_argument("--set", action="append", default=[], help="evaluation override (section.field=v)")
    p.add_argument("--smoke", action="store_true", help="train a tiny supernet here, score 3 archs, dump them")
    args = p.parse_args()
    if not args.supernet and not args.smoke:
        p.error("--supernet is required (or --smoke)")
    out = Path(args.out)
    if args.smoke:
        args.supernet = args.supernet or str(smoke_macro_supernet(out / "supernet"))
        out = out / "scores.json"
    supernet = Path(args.supernet)
    cfg = default_config(supernet, None, args.set)
    if args.smoke:
        from supernet.jobs.rank import predict

        net, _ = load_supernet(supernet)
        predict(cfg, supernet, [net.space.from_indices((i,) * net.space.num_layers) for i in range(3)])
    head, scores = cached_scores(cfg, supernet)
    if not scores:
        p.error(f"{supernet}: its evaluation cache holds no scores under these settings (score archs first)")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, dump(head, scores))
    print(f"{len(scores)} scores -> {out}")


if __name__ == "__main__":
    main()
