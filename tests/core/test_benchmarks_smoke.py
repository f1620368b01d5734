"""Every script in benchmarks/ still runs (issue 30.3): `--smoke` (tiny sizes, seconds), in this process.

In-process (`runpy`) rather than one child process per script: importing torch and the toolkit once
instead of once per script keeps the whole file within about a minute on a busy CPU. A new script
without `--smoke` fails here (argparse exits 2)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import FASHION, REPO, shared_path

BENCHMARKS = REPO / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))
CIFAR_JPG = shared_path("data", "cifar10-jpg")
NEEDS = {  # what a script reads that a checkout may not have
    "eval_overhead.py": FASHION,
    "search_strategies.py": FASHION,
    "search_regret.py": FASHION,
    "predictor_design.py": FASHION,
    "score_dump.py": FASHION,
    "few_shot_inheritance.py": FASHION,
    "ranking_experiment.py": FASHION,
    "train_end_to_end.py": FASHION,
    "train_budget.py": FASHION,
    "behaviour_fingerprint.py": FASHION,
    "search_throughput.py": FASHION,
    "loader_speed.py": CIFAR_JPG,
    "ranking_macro.py": CIFAR_JPG,
}
OUT = {
    "search_regret.py",
    "predictor_design.py",
    "score_dump.py",
    "search_strategies.py",
    "ranking_experiment.py",
    "ranking_macro.py",
    "macro_cost_check.py",
}


def test_there_are_scripts():
    assert "train_speed.py" in SCRIPTS and len(SCRIPTS) >= 15


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_smoke(script, tmp_path, monkeypatch, capsys):
    needed = NEEDS.get(script)
    if needed is not None and not Path(needed).is_dir():
        pytest.skip(f"{needed} not installed")
    args = [str(BENCHMARKS / script), "--smoke"]
    if script in OUT:
        args += ["--out", str(tmp_path / "out")]
    if script == "loader_speed.py":
        args += ["--root", str(CIFAR_JPG)]
    if script == "ranking_macro.py":
        args += ["--data-root", str(CIFAR_JPG)]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", args)
    monkeypatch.syspath_prepend(str(REPO / "src"))
    threads = torch.get_num_threads()
    try:
        runpy.run_path(args[0], run_name="__main__")
    except SystemExit as e:
        assert e.code in (None, 0), f"{script} --smoke exited {e.code}: {capsys.readouterr().out[-2000:]}"
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert out.strip(), f"{script} --smoke printed nothing"
    if script == "train_budget.py":  # the whole schedule: 3 epochs of (96 - 32 validation) / batch 8 steps
        assert "3 epochs, 24 steps" in out, out
    if script == "ranking_macro.py":  # its scores go through the run's evaluation cache (score_dump.py reads it)
        assert list((tmp_path / "out" / "supernets").glob("*/checkpoints/eval-cache.sqlite"))
