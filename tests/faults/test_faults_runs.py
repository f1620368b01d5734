"""Run directories are never overwritten by a refused command, and a search records what it searched."""

import json
import os

import pytest
import yaml

from supernet.config.schema import load_config
from supernet.jobs.search import search_supernet
from supernet.jobs.train import train_supernet
from tests.conftest import assert_one_line_error, needs_fashion, run_main, set_args, tiny_overrides

pytestmark = needs_fashion
SETTINGS = {
    "train__epochs": 1,
    "data__train_limit": 256,
    "data__val_size": 64,
    "supernet__identity": "els",
    "train__lr": 0.05,
}


def sets(**extra) -> list[str]:
    return set_args(tiny_overrides(**{**SETTINGS, **extra}))


def snapshot(folder):
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture(scope="module")
def supernet(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "supernet"
    train_supernet(load_config(None, tiny_overrides(**SETTINGS)), run_dir)
    return run_dir


def test_refused_resume_keeps_config_yaml_and_names_the_changed_fields(supernet):
    before = snapshot(supernet)
    r = run_main("train", "--run-dir", str(supernet), "--resume", *sets(train__lr=0.5, train__seed=3))
    assert_one_line_error(r, "train.lr: 0.05 -> 0.5", "train.seed: 0 -> 3")
    assert snapshot(supernet) == before


def test_search_into_the_supernets_own_dir_is_refused_before_writing(supernet):
    before = snapshot(supernet)
    for run_dir in (supernet, supernet / "checkpoints" / ".."):
        r = run_main(
            "search",
            "--supernet",
            str(supernet),
            "--run-dir",
            str(run_dir),
            "--strategy",
            "random",
            *sets(search__num_samples=4),
        )
        assert_one_line_error(r, "run directory of `supernet train`")
    r = run_main("export", "--supernet", str(supernet), "--arch", "0" + ",0" * 7, "--out", str(supernet))
    assert_one_line_error(r, "--out", "`supernet train`")
    assert snapshot(supernet) == before
    # rank reads the supernet's own settings from its (untouched) config.yaml
    from supernet.runs.load import default_config

    assert default_config(supernet).supernet.identity == "els"


def test_search_config_records_the_searched_supernets_settings(supernet, tmp_path):
    cfg = load_config(None, tiny_overrides(search__strategy="random", search__num_samples=4))  # defaults: skip
    search_supernet(cfg, supernet, tmp_path / "s")
    saved = yaml.safe_load((tmp_path / "s" / "config.yaml").read_text())
    trained = yaml.safe_load((supernet / "config.yaml").read_text())
    assert saved["supernet"] == trained["supernet"] and saved["supernet"]["identity"] == "els"
    assert saved["train"]["lr"] == 0.05 and saved["data"] == trained["data"]
    options = saved["space"]["options"]
    assert options["width"] == 0.25 and options["layers_per_stage"] == [1, 2, 1, 2, 1, 1]


def test_read_only_supernet_dir_can_be_searched(supernet, tmp_path, monkeypatch, caplog):
    import supernet.jobs.search as wf

    cfg = load_config(None, tiny_overrides(search__strategy="random", search__num_samples=4))
    mode = (supernet / "checkpoints").stat().st_mode
    os.chmod(supernet / "checkpoints", 0o555)
    if os.geteuid() == 0:  # root writes anywhere: stand in for the permission check the OS skips
        monkeypatch.setattr(wf, "writable_dir", lambda folder: os.stat(folder).st_mode & 0o200 != 0)
    try:
        out = search_supernet(cfg, supernet, tmp_path / "s")
    finally:
        os.chmod(supernet / "checkpoints", mode)
    assert out["evaluations"] == 4
    assert "read-only" in caplog.text  # a warning of the supernet.jobs.search logger
    assert (tmp_path / "s" / "eval-cache.sqlite").is_file()


@pytest.mark.parametrize("command", [("train",), ("groundtruth", "--sample", "1")])
@pytest.mark.parametrize("kind", ["file", "dangling", "read-only"])
def test_unusable_run_dir_is_one_line(tmp_path, kind, command):
    target = tmp_path / "r"
    if kind == "file":
        target.write_text("x")
    elif kind == "dangling":
        os.symlink(tmp_path / "missing", target)
    else:
        target.mkdir()
        os.chmod(target, 0o555)
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
    r = run_main(*command, "--run-dir", str(target), *sets())
    assert_one_line_error(r, str(target))


def test_export_out_that_is_a_file_is_one_line(supernet, tmp_path):
    (tmp_path / "f").write_text("keep")
    r = run_main("export", "--supernet", str(supernet), "--arch", "0" + ",0" * 7, "--out", str(tmp_path / "f"))
    assert_one_line_error(r, "--out", "is a file")
    assert (tmp_path / "f").read_text() == "keep"


@pytest.mark.parametrize("content", ["[1, 2]", "3", '{"best": 5}', '{"arch": ["x"]}'])
def test_arch_json_of_the_wrong_shape_is_one_line(supernet, tmp_path, content):
    (tmp_path / "a.json").write_text(content)
    r = run_main(
        "export", "--supernet", str(supernet), "--arch", str(tmp_path / "a.json"), "--out", str(tmp_path / "e")
    )
    assert_one_line_error(r, "a.json")


def test_export_takes_a_search_result_json(supernet, tmp_path):
    cfg = load_config(None, tiny_overrides(search__strategy="random", search__num_samples=4))
    out = search_supernet(cfg, supernet, tmp_path / "s")
    r = run_main(
        "export",
        "--supernet",
        str(supernet),
        "--arch",
        str(tmp_path / "s" / "result.json"),
        "--out",
        str(tmp_path / "e"),
    )
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "e" / "model.json").read_text())["arch"] == out["best"]


def test_fallback_without_previous_checkpoint_stops_and_keeps_the_bad_file(supernet, tmp_path):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(supernet, run_dir)
    assert not (run_dir / "checkpoints" / "prev.pt").exists()
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"corrupt")
    before = snapshot(run_dir)
    r = run_main("train", "--run-dir", str(run_dir), "--resume", "--fallback", *sets())
    assert_one_line_error(r, "prev.pt", "does not exist", "last.pt is left in place")
    assert snapshot(run_dir) == before  # last.pt kept in place, metrics.jsonl without duplicated rows


def test_corrupt_checkpoint_hint_names_the_command_that_has_fallback(supernet, tmp_path):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(supernet, run_dir)
    ckpt = run_dir / "checkpoints"
    shutil.copy(ckpt / "last.pt", ckpt / "prev.pt")
    (ckpt / "last.pt").write_bytes(b"corrupt")
    r = run_main("search", "--supernet", str(run_dir), "--run-dir", str(tmp_path / "s"))
    assert_one_line_error(r, "supernet train --resume --fallback")
