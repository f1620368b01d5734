"""Every bad input gets one line on stderr and exit code 2, never a traceback."""

import json

import pytest

from tests.conftest import assert_one_line_error, needs_fashion, run_cli, run_main


def test_cost_json_for_index_form():
    r = run_main("cost", "--space", "scarlet-s1", "--arch", ",".join(["0"] * 19), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["macs"] > 100e6 and out["params"] > 1e6 and out["indices"] == [0] * 19


def test_scarlet_table_1_model_a_parses_with_no_option():
    r = run_main("cost", "--space", "scarlet-s1", "--arch", "0,5,0,6,3,2,3,0,2,1,3,5,2,4,4,4,5,3,6", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["arch"].split(",")[3] == out["arch"].split(",")[18] == "id"


def test_cost_respects_space_options():
    zeros = ("cost", "--space", "scarlet-s1", "--arch", ",".join(["0"] * 19), "--json")
    base = json.loads(run_main(*zeros, code=0).stdout)
    half = json.loads(run_main(*zeros, "--resolution", "112", code=0).stdout)
    assert half["macs"] < base["macs"] / 3


@pytest.mark.parametrize(
    "args,needles",
    [
        (("cost", "--space", "nope", "--arch", "0"), ("unknown search space 'nope'",)),
        (("cost", "--space", "scarlet-s1", "--arch", "0,1"), ("has 2 layers",)),
        (("cost", "--space", "scarlet-s1", "--arch", "9" + ",0" * 18), ("layer 0", "allowed")),
        (("cost", "--space", "scarlet-s1", "--arch", "0", "--width", "-1"), ("width",)),
        (("cost", "--space", "scarlet-s1", "--arch", "0", "--option", "bogus=1"), ("bogus",)),
        (("cost", "--space", "scarlet-s1", "--arch", "0", "--width", "inf"), ("width must be a finite number",)),
        (("cost", "--space", "nas-bench-201", "--arch", "0", "--option", "width=.inf"), ("width must be a finite",)),
        (("train", "--run-dir", "{tmp}/r", "--set", "train.grad_clip=-1"), ("'train.grad_clip' must be > 0 or null",)),
        (("train", "--run-dir", "{tmp}/r", "--set", "train.epochs=many"), ("train.epochs", "int")),
        (("train", "--run-dir", "{tmp}/r", "--set", "trian.epochs=1"), ("unknown config field 'trian'",)),
        (("train", "--run-dir", "{tmp}/r", "--config", "{tmp}/missing.yaml"), ("config file not found",)),
        (("train", "--run-dir", "{tmp}/r", "--set", "data.root={tmp}", "--set", "data.name=cifar10"), ("CIFAR",)),
        (("search", "--supernet", "{tmp}", "--run-dir", "{tmp}/s"), ("no checkpoint",)),
        (("search", "--supernet", "{tmp}/bad.pt", "--run-dir", "{tmp}/s"), ("corrupted",)),
        (("export", "--supernet", "{tmp}/bad.pt", "--arch", "0", "--out", "{tmp}/e"), ("corrupted",)),
        (("groundtruth", "--run-dir", "{tmp}/g", "--by-identities"), ("--by-identities", "--sample K")),
        (("bogus-command",), ("invalid choice",)),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, needles):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    r = run_main(*(a.format(tmp=tmp_path) for a in args))
    assert_one_line_error(r, *needles)


def test_bad_input_in_a_child_process_is_one_line_exit_2(tmp_path):
    """As a user runs it: the interpreter's and torch's start-up add nothing to the one line (the cases above
    run in this process: the CLI's log handler writes to the stderr of the moment, so they see what it prints)."""
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    r = run_cli("search", "--supernet", str(tmp_path / "bad.pt"), "--run-dir", str(tmp_path / "s"))
    assert_one_line_error(r, "corrupted")
    assert not (tmp_path / "s").exists()


@needs_fashion
@pytest.mark.parametrize(
    "verb, field",
    [("train", "train.batch_size"), ("retrain", "standalone.batch_size"), ("train", "eval.recal_batch_size")],
)
def test_batch_larger_than_the_data_is_an_error_not_zero_steps(tmp_path, verb, field):
    small = [
        "--set",
        "data.train_limit=100",
        "--set",
        "data.val_size=20",
        "--set",
        "train.health_models=1",
        "--set",
        "train.progress=false",
        "--set",
        "eval.recal_batch_size=16",
        "--set",
        f"{field}=512",
    ]
    extra = ["--space", "scarlet-s1", "--preset", "fashion-mnist", "--arch", "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0"]
    r = run_main(verb, "--run-dir", str(tmp_path / "r"), *small, *(extra if verb == "retrain" else []))
    assert_one_line_error(r, f"{field}=512", "larger than the training split (80 images)")
    assert "trained 0 steps" not in r.stdout
