"""`supernet report` on crafted run directories: the attacks of issue 15 item 9 are the tests."""

import base64
import json
import os

import pytest

from supernet.analysis.report import PNG_SIGNATURE, build_report, op_frequency
from supernet.core.errors import ConfigError
from tests.conftest import run_cli

SECRET = b"root:x:0:0:secret-line-of-a-private-file\n"
PNG = PNG_SIGNATURE + b"fake image body"


@pytest.fixture
def secret(tmp_path):
    """A private file outside the run directory, written with a PNG header (so only the path check stops it)."""
    path = tmp_path / "private" / "passwd"
    path.parent.mkdir()
    path.write_bytes(PNG_SIGNATURE + SECRET)
    return path


def _embedded(page: str, content: bytes) -> bool:
    return base64.b64encode(content).decode()[:40] in page or content.decode(errors="ignore") in page


def _rank(**fields):
    base = {
        "num_archs": 2,
        "groundtruth": "gt.csv",
        "k": 1,
        "improvement_at": 1,
        "figures": [],
        "supernets": [{"label": "a", "kendall": 0.5}],
    }
    return {**base, **fields}


def test_rank_json_naming_files_outside_the_run_dir_embeds_none_of_them(tmp_path, secret):
    run = tmp_path / "run"
    run.mkdir()
    (run / "ok.png").write_bytes(PNG)
    os.symlink(secret, run / "link.png")
    (run / "sub").mkdir()
    names = [str(secret), "../private/passwd", "sub/../../private/passwd", "link.png", "ok.png"]
    (run / "rank.json").write_text(json.dumps(_rank(figures=names)))
    page = build_report(run).read_text()
    assert not _embedded(page, PNG_SIGNATURE + SECRET)
    assert base64.b64encode(PNG).decode() in page  # the figure inside the run dir is kept
    assert page.count("left out") == 4


def test_similarity_json_naming_a_file_outside_is_refused(tmp_path, secret):
    run = tmp_path / "run"
    run.mkdir()
    (run / "similarity.json").write_text(
        json.dumps({"layer": 0, "ops": ["a"], "mean_similarity_to_others": [1.0], "figure": str(secret)})
    )
    page = build_report(run).read_text()
    assert not _embedded(page, PNG_SIGNATURE + SECRET) and "left out" in page


def test_symlinked_files_and_folders_leading_out_are_not_read(tmp_path, secret):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("a: 1\n")
    os.symlink(secret, run / "report.md")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "report.md").write_bytes(SECRET)
    os.symlink(outside, run / "linked")
    page = build_report(run).read_text()
    assert "secret-line" not in page


@pytest.mark.parametrize(
    "name,data",
    [
        (
            "rank.json",
            _rank(
                num_archs="<script>alert(1)</script>",
                k="<script>k</script>",
                improvement_at="<script>n</script>",
                groundtruth="<script>g</script>",
            ),
        ),
        (
            "similarity.json",
            {
                "layer": "<script>alert(1)</script>",
                "ops": ["<script>op</script>"],
                "mean_similarity_to_others": [0.5],
                "prefix_arch": "<script>p</script>",
            },
        ),
        (
            "result.json",
            {
                "history": [],
                "best": "<script>b</script>",
                "best_metrics": {"<script>m</script>": 1},
                "strategy": "<script>s</script>",
            },
        ),
    ],
)
def test_every_value_is_html_escaped(tmp_path, name, data):
    (tmp_path / name).write_text(json.dumps(data))
    page = build_report(tmp_path).read_text()
    assert "<script" not in page and "&lt;script&gt;" in page


@pytest.mark.parametrize(
    "name,text",
    [
        ("metrics.jsonl", '{"type": "step", "global_step": 1}\n'),  # no loss
        ("metrics.jsonl", "5\n"),  # not an object
        ("result.json", json.dumps({"history": [{"metrics": None}]})),
        ("result.json", json.dumps({"history": [1, 2], "topk": [{"metrics": {}}]})),
        ("rank.json", json.dumps(_rank(self_consistency={"mean": {"kendall": "high"}}))),
        ("rank.json", json.dumps(_rank(supernets=[1]))),
    ],
)
def test_malformed_inputs_are_one_line_errors(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    r = run_cli("report", str(tmp_path), timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert name in r.stderr and "malformed" in r.stderr
    assert not (tmp_path / "report.html").exists()


def test_report_out_that_is_a_directory_is_refused(tmp_path):
    (tmp_path / "config.yaml").write_text("a: 1\n")
    with pytest.raises(ConfigError, match="is a directory"):
        build_report(tmp_path, tmp_path)


def test_op_frequency_has_one_column_per_distinct_op():
    _, ops, m = op_frequency(["a,a,b", "b,b,a"])
    assert ops == ["a", "b"] and m.shape == (3, 2)
    assert m.sum(axis=1).tolist() == [1.0, 1.0, 1.0]


def test_search_section_shows_the_evaluation_settings():
    """Issue 24: a search's result.json records the evaluation settings it scored archs with."""
    from supernet.analysis.report import search_section

    html = search_section({"best": "id", "best_metrics": {}, "evaluation": {"recal_batches": 3, "val_limit": 500}})
    assert "evaluation settings" in html and "eval.recal_batches" in html and "500" in html
    assert "evaluation settings" not in search_section({"best": "id", "best_metrics": {}, "evaluation": "junk"})
