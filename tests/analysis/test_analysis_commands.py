"""groundtruth / rank / similarity / report end to end on a tiny supernet and a 2-arch ground truth."""

import base64
import csv
import json
import random
import shutil
import subprocess
from functools import partial
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch

from supernet.analysis.groundtruth import COLUMNS, parse_shard, sample_archs_by_identities
from supernet.analysis.report import build_report
from supernet.analysis.similarity import candidate_similarity
from supernet.config.schema import load_config
from supernet.core.errors import ConfigError
from supernet.jobs.groundtruth import run_groundtruth
from supernet.model.supernet import Supernet, SupernetOptions
from supernet.search.evaluator import TableEvaluator
from tests.conftest import assert_one_line_error, needs_fashion, run_cli, set_args, tiny_overrides

run = partial(run_cli, code=0)  # every CLI call here must succeed

ROOT = Path(__file__).resolve().parents[2]
ARCHS = ["e3k3,e3k3,id,e3k3,id,id,e3k3,e3k3", "e6k7,e6k7,e6k7,e6k7,e6k7,e6k7,e6k7,e6k7"]


def overrides(**extra) -> list[str]:
    return set_args(tiny_overrides(train__epochs=1, **extra))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A folder that collects every command's run dir (the report test renders all of it)."""
    return tmp_path_factory.mktemp("analysis")


@pytest.fixture(scope="module")
def supernet_run(root):
    run("train", "--run-dir", str(root / "supernet"), *overrides())
    return root / "supernet"


@pytest.fixture(scope="module")
def groundtruth(root):
    (root / "archs.txt").write_text("# two archs\n" + "\n".join(ARCHS) + "\n")
    r = run("groundtruth", "--run-dir", str(root / "gt"), "--archs", str(root / "archs.txt"), *overrides())
    assert "trained 2, skipped 0" in r.stdout
    return root / "gt"


@pytest.fixture(scope="module")
def rank_run(root, supernet_run, groundtruth):
    ckpt = next((supernet_run / "checkpoints").glob("*.pt"))
    r = run(
        "rank",
        "--supernet",
        str(supernet_run),
        "--supernet",
        str(ckpt),
        "--groundtruth",
        str(groundtruth / "groundtruth.csv"),
        "--run-dir",
        str(root / "rank"),
        "--topk",
        "1",
    )
    assert "kendall" in r.stdout
    return root / "rank"


@needs_fashion
def test_groundtruth_writes_csv(groundtruth, tiny_space):
    with (groundtruth / "groundtruth.csv").open() as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == COLUMNS
    assert [r[0] for r in rows[1:]] == ARCHS
    table = TableEvaluator(groundtruth / "groundtruth.csv", tiny_space)
    for arch in ARCHS:
        m = table.metrics(tiny_space.parse_arch(arch))
        assert 0 <= m["accuracy"] <= 1 and 0 <= m["test_accuracy"] <= 1 and m["macs"] > 0 and m["params"] > 0
    folders = sorted(p.name for p in (groundtruth / "archs").iterdir())
    assert [f[:5] for f in folders] == ["0000-", "0001-"]
    assert all((groundtruth / "archs" / f / "result.json").is_file() for f in folders)


@needs_fashion
def test_groundtruth_rerun_skips_finished_archs(groundtruth, tiny_space):
    results = sorted((groundtruth / "archs").glob("*/result.json"))
    before = [p.stat().st_mtime_ns for p in results]
    (groundtruth / "groundtruth.csv").unlink()  # re-assembled from the per-arch results
    cfg = load_config(None, tiny_overrides(train__epochs=1))
    out = run_groundtruth(cfg, groundtruth, None)  # the arch list comes from R/archs.txt
    assert out["trained"] == [] and out["skipped"] == ARCHS and out["rows"] == 2
    assert [p.stat().st_mtime_ns for p in results] == before
    assert len((groundtruth / "groundtruth.csv").read_text().splitlines()) == 3
    with pytest.raises(ConfigError, match="different arch list"):
        run_groundtruth(cfg, groundtruth, [tiny_space.parse_arch(ARCHS[0])])


@needs_fashion
def test_groundtruth_shard_trains_only_its_archs(tmp_path, tiny_space):
    cfg = load_config(None, tiny_overrides(train__epochs=1, standalone__max_steps_per_epoch=2))
    archs = [tiny_space.parse_arch(a) for a in ARCHS]
    out = run_groundtruth(cfg, tmp_path, archs, shard=(1, 2))
    assert out["trained"] == [ARCHS[1]] and out["rows"] == 1 and out["total"] == 2
    assert [p.name[:4] for p in (tmp_path / "archs").iterdir()] == ["0001"]
    lines = (tmp_path / "groundtruth.csv").read_text().splitlines()
    assert len(lines) == 2 and ARCHS[1] in lines[1]


def test_sample_by_identities_spreads_depths_evenly(tiny_space):
    can_id = [i for i, layer in enumerate(tiny_space.layers) if "id" in layer.choices]
    archs = sample_archs_by_identities(tiny_space, 2 * len(can_id) + 1, seed=3)
    counts = [arch.ops.count("id") for arch in archs]
    assert counts == [i % len(can_id) for i in range(len(archs))]  # round-robin over 0 .. n-1 identities
    assert len(set(archs)) == len(archs) and all(tiny_space.validate(a) == a for a in archs)
    assert archs == sample_archs_by_identities(tiny_space, len(archs), seed=3)
    assert archs != sample_archs_by_identities(tiny_space, len(archs), seed=4)
    no_id = tiny_space.restrict([[c for c in layer.choices if c != "id"] for layer in tiny_space.layers])
    with pytest.raises(ConfigError, match="no `id` choice"):
        sample_archs_by_identities(no_id, 4)


def test_parse_shard():
    assert parse_shard(None) == (0, 1) and parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "1", "a/b", "-1/2", "0/0"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)


@needs_fashion
def test_rank_end_to_end(rank_run):
    out = json.loads((rank_run / "rank.json").read_text())
    assert out["num_archs"] == 2 and out["k"] == 1 and len(out["supernets"]) == 2
    for s in out["supernets"]:
        assert set(s) >= {"kendall", "pearson", "spearman", "topk_overlap", "improvement", "improvement_curve"}
        assert len(s["improvement_curve"]) == 2
    sc = out["self_consistency"]  # the same weights twice: identical predictions
    kt = np.array(sc["kendall"], dtype=float)  # None (constant predictions) -> nan
    assert np.array_equal(np.diag(kt), [1, 1]) and (kt[0, 1] == kt[1, 0] == 1 or np.isnan(kt[0, 1]))
    assert np.allclose(np.diag(np.array(sc["pearson"], dtype=float)), 1)
    with (rank_run / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["arch"] for r in rows] == ARCHS and rows[0]["pred_0"] == rows[0]["pred_1"]
    for name in ("rank_scatter.png", "rank_improvement.png", "rank_consistency.png"):
        assert (rank_run / name).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "options", [{}, {"interchoice": "bias", "interchoice_bias_at": "pre_act"}, {"interchoice": "split"}]
)
def test_similarity_matrix(tiny_space, options):
    torch.manual_seed(0)
    net = Supernet(tiny_space, SupernetOptions(zero_init_residual=False, **options))
    layer = next(i for i, spec in enumerate(tiny_space.layers) if "id" in spec.choices)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ops, m = candidate_similarity(net, layer, torch.randn(8, 1, 28, 28), tiny_space.sample(random.Random(0)))
    n = len(tiny_space.layers[layer].choices)
    assert ops == list(tiny_space.layers[layer].choices) and m.shape == (n, n)
    assert np.allclose(m, m.T) and np.allclose(np.diag(m), 1, atol=1e-5)
    assert np.all(m <= 1 + 1e-5) and np.all(m >= -1 - 1e-5) and m.min() < 0.99
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # no side effects


@needs_fashion
def test_similarity_command(root, supernet_run):
    r = run("similarity", "--supernet", str(supernet_run), "--layer", "2", "--run-dir", str(root / "similarity"))
    out = json.loads((root / "similarity" / "similarity.json").read_text())
    m = np.array(out["matrix"])
    assert m.shape == (7, 7) and np.allclose(m, m.T) and np.allclose(np.diag(m), 1, atol=1e-5)
    assert "id" in r.stdout and (root / "similarity" / "similarity.png").read_bytes()[:4] == b"\x89PNG"


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.external = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.srcs.append(a.get("src") or "")
        if tag in ("script", "link", "iframe") or (
            tag != "a" and any(k in a for k in ("href", "src")) and tag != "img"
        ):
            self.external.append(tag)


@needs_fashion
def test_report_is_one_self_contained_file(root, supernet_run, rank_run, tiny_space):
    if not (root / "similarity").exists():
        run("similarity", "--supernet", str(supernet_run), "--layer", "2", "--run-dir", str(root / "similarity"))
    rng = random.Random(0)
    history = [
        {
            "generation": g,
            "arch": str(a),
            "feasible": True,
            "metrics": {"accuracy": rng.random(), "macs": rng.randint(1, 9) * 1e5, "params": 1e4},
        }
        for g in range(3)
        for a in [tiny_space.sample(rng) for _ in range(4)]
    ]
    top = sorted(history, key=lambda r: -r["metrics"]["accuracy"])[:3]
    result = {
        "best": top[0]["arch"],
        "best_metrics": top[0]["metrics"],
        "history": history,
        "topk": [{"arch": r["arch"], "metrics": r["metrics"]} for r in top],
        "strategy": "evolution",
    }
    (root / "search").mkdir(exist_ok=True)
    (root / "search" / "result.json").write_text(json.dumps(result))

    path = build_report(root)
    assert path == root / "report.html" and [p.name for p in root.glob("*.html")] == ["report.html"]
    page = path.read_text()
    parser = _Images()
    parser.feed(page)
    # training, search progress, Pareto, op frequency, 3 ranking figures, similarity
    assert len(parser.srcs) >= 8, parser.srcs
    for src in parser.srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"
    assert parser.external == [] and "http://" not in page and "https://" not in page
    for title in ("config", "training (supernet)", "search (search)", "ranking (rank)", "feature similarity"):
        assert title in page

    single = build_report(rank_run, rank_run / "r.html")  # a single command's run dir works too
    assert single.read_text().count("data:image/png;base64,") == 3

    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium not installed: browser rendering not checked")
    shot = root / "shot.png"
    r = subprocess.run(
        ["bash", str(ROOT / "scripts" / "check_report.sh"), str(path), str(shot)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    assert shot.read_bytes()[:4] == b"\x89PNG"


def test_report_of_empty_dir_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="nothing to report"):
        build_report(tmp_path)
    assert_one_line_error(run_cli("report", str(tmp_path / "missing")))
