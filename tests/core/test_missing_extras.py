"""Without an optional extra, a command that needs it stops in one line before it writes anything, and a command
whose figures are its only use of it writes its JSON results and skips the figures (issue 29.8)."""

from __future__ import annotations

import csv
import json
import random
import sys

import pytest

from tests.conftest import assert_one_line_error, needs_fashion, run_main, tiny_overrides
from tests.core.test_export_onnx import write_supernet


def without(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make `import module` fail as if the package were not installed."""
    for name in list(sys.modules):
        if name.partition(".")[0] in modules:
            monkeypatch.delitem(sys.modules, name)
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_latency_table_on_onnxruntime_without_the_extra_is_one_line(monkeypatch, tmp_path, missing):
    without(monkeypatch, missing)
    out = tmp_path / "table.json"
    r = run_main(
        "latency-table", "--space", "scarlet-s1", "--preset", "fashion-mnist", "--width", "0.25",
        "--backend", "onnxruntime", "--calibrate", "0", "--min-run-time", "0.001", "--out", str(out),
    )  # fmt: skip
    assert_one_line_error(r, f"needs the optional package '{missing}'", "supernet[onnx]")
    assert not out.exists()


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_export_onnx_without_the_extra_writes_nothing(monkeypatch, tmp_path, tiny_space, missing):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    write_supernet(tmp_path / "run", tiny_space)
    without(monkeypatch, missing)
    arch = tiny_space.sample(random.Random(0)).to_string()
    out = tmp_path / "e"
    r = run_main("export", "--supernet", str(tmp_path / "run"), "--arch", arch, "--out", str(out), "--onnx")
    assert_one_line_error(r, "export --onnx needs the optional package", "supernet[onnx]")
    assert not out.exists()


@needs_fashion
def test_similarity_without_plots_writes_its_json(monkeypatch, tmp_path, tiny_space):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    write_supernet(tmp_path / "run", tiny_space)
    without(monkeypatch, "matplotlib")
    sets = [a for item in tiny_overrides() for a in ("--set", item)]
    r = run_main(
        "similarity", "--supernet", str(tmp_path / "run"), "--layer", "1", "--run-dir", str(tmp_path / "sim"), *sets
    )
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "sim" / "similarity.json").read_text())
    assert out["figure"] is None and len(out["matrix"]) == len(out["ops"])
    assert not (tmp_path / "sim" / "similarity.png").exists()
    assert "similarity: figures not written" in r.stderr and "supernet[plots]" in r.stderr


@needs_fashion
def test_rank_without_plots_writes_rank_json(monkeypatch, tmp_path, tiny_space):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    write_supernet(tmp_path / "run", tiny_space)
    archs = [tiny_space.sample(random.Random(seed)).to_string() for seed in range(3)]
    with (tmp_path / "gt.csv").open("w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["arch", "accuracy", "test_accuracy", "macs", "params", "seconds"])
        rows.writerows([arch, 0.5 + 0.1 * i, 0.5, 1, 1, 1] for i, arch in enumerate(archs))
    without(monkeypatch, "matplotlib")
    sets = [a for item in tiny_overrides() for a in ("--set", item)]
    r = run_main(
        "rank", "--supernet", str(tmp_path / "run"), "--groundtruth", str(tmp_path / "gt.csv"),
        "--run-dir", str(tmp_path / "rank"), "--topk", "1", *sets,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "rank" / "rank.json").read_text())
    assert out["figures"] == [] and out["num_archs"] == 3 and "kendall" in out["supernets"][0]
    assert "rank: figures not written" in r.stderr
