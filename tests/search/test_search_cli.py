"""`supernet search` on a table (no training): strategies, constraints, journal and resume."""

import csv
import json
import random
import re
import subprocess
from pathlib import Path

import pytest

from supernet.cost import CostTable
from supernet.space import create_space
from tests.conftest import assert_one_line_error, run_cli, run_main, search_options

# NAS-Bench-Macro's 6,561 archs: a table every CLI call of this file reads whole (scarlet-s1 with one layer per
# stage has 117,649, and the file ran ~4 minutes on 2 cores)
SPACE = ["--space", "nas-bench-macro", "--preset", "fashion-mnist"]


def table_space():
    """The space SPACE names (the table fixture's; other files' workers build it from here)."""
    return create_space("nas-bench-macro", preset="fashion-mnist")


def search_table(
    table: Path, run_dir: Path, *args: str, timeout: float = 120, child: bool = False
) -> subprocess.CompletedProcess:
    """`supernet search --table` over the small space of `table` into `run_dir`: in this process (a child
    process costs ~10 s of imports and MACs counting per call on 2 cores), or with `child` as a user runs it."""
    argv = ("search", "--table", str(table), *SPACE, "--run-dir", str(run_dir), *args)
    return run_cli(*argv, timeout=timeout) if child else run_main(*argv)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("table")
    space = table_space()
    costs = CostTable.build(space)
    top = costs.macs_range()[1]
    path = tmp_path / "table.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "accuracy"])
        for indices in __import__("itertools").product(*[range(len(l.choices)) for l in space.layers]):
            arch = space.from_indices(indices)
            noise = random.Random(str(indices)).random() / 20
            w.writerow([arch.to_string(), round(0.9 * costs.query(arch).macs / top + noise, 5)])
    return path, space, costs


@pytest.mark.parametrize("strategy", ["random", "evolution", "nsga2", "ces"])
def test_table_search_respects_budget(tmp_path, table, strategy):
    path, space, costs = table
    budget = sorted(costs.query(space.sample(random.Random(i))).macs for i in range(50))[25]
    r = search_table(
        path,
        tmp_path / "s",
        "--strategy",
        strategy,
        "--max-macs",
        str(budget),
        "--set",
        search_options(strategy, 8, 3, 24),
        "--set",
        "search.min_acc=0.0",
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "s" / "result.json").read_text())
    archs = [out["best"]] + [t["arch"] for t in out["topk"]] + [p["arch"] for p in out.get("pareto", [])]
    assert all(costs.query(space.parse_arch(a)).macs <= budget for a in archs)
    assert (tmp_path / "s" / "pareto.png").stat().st_size > 0


def test_infeasible_budget_is_a_one_line_error(tmp_path, table):
    path, _, _ = table
    r = search_table(path, tmp_path / "s", "--max-macs", "1k", timeout=60, child=True)
    assert r.returncode == 2 and "macs" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_rerun_needs_resume_and_resume_reuses_the_journal(tmp_path, table):
    path, _, _ = table
    args = ("--set", search_options())
    first = search_table(path, tmp_path / "s", *args, timeout=60)
    assert first.returncode == 0, first.stderr
    refused = search_table(path, tmp_path / "s", *args, timeout=60)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    again = search_table(path, tmp_path / "s", *args, "--resume", timeout=60)
    assert again.returncode == 0
    a = json.loads((tmp_path / "s" / "result.json").read_text())
    assert a["history"] and a["best"] in first.stdout


@pytest.mark.parametrize("strategy", ["evolution", "nsga2"])
def test_min_acc_no_feasible_arch_is_a_one_line_error_naming_the_best(tmp_path, table, strategy):
    path, _, _ = table
    best = max(float(row["accuracy"]) for row in csv.DictReader(path.open()))
    r = search_table(
        path,
        tmp_path / "s",
        "--strategy",
        strategy,
        "--min-acc",
        "1",  # the table's best is 0.95; above 1 is refused as out of range
        "--set",
        search_options(strategy, 8, 2, 16),
        "--set",
        "search.progress=false",
        timeout=120,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [line for line in r.stderr.splitlines() if not line.startswith("search: ")]  # progress lines
    assert len(lines) == 1 and "best accuracy found was" in lines[0] and "Traceback" not in r.stderr
    named = float(re.search(r"best accuracy found was ([0-9.]+\d)", lines[0]).group(1))
    assert named <= best
    assert not (tmp_path / "s" / "result.json").exists()


def test_nsga2_acc_min_from_the_cli_is_stated_in_result_json(tmp_path, table):
    path, _, _ = table
    r = search_table(
        path,
        tmp_path / "s",
        "--strategy",
        "nsga2",
        "--min-acc",
        "0.05",
        "--set",
        search_options("nsga2", 8, 2),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "s" / "result.json").read_text())
    assert out["acc_min"] == 0.05 and "accuracy >= 0.05" in out["problem"]
    assert out["best_metrics"]["accuracy"] > 0.05


@pytest.mark.parametrize("progress", [True, False])
def test_search_shows_a_progress_bar_unless_turned_off(tmp_path, table, progress):
    path, _, _ = table
    r = search_table(
        path,
        tmp_path / "s",
        "--strategy",
        "random",
        "--set",
        "search.options.num_samples=20",
        "--set",
        f"search.progress={progress}",
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert ("arch/s" in r.stderr or "s/arch" in r.stderr) == progress, r.stderr
    assert ("search: 20 archs evaluated" in r.stderr) != progress, r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--min-acc", "-1"),
        ("--min-acc", "1.5"),
        ("--set", "search.min_acc=-0.5"),
        ("--set", "search.options.population=0"),
    ],
)
def test_out_of_range_search_options_are_one_line_errors(tmp_path, args):
    """Issue 23.19: `--min-acc -1` was accepted (command-line values skipped the config's range checks)."""
    r = run_main("search", "--table", str(tmp_path / "t.csv"), *SPACE, "--run-dir", str(tmp_path / "s"), *args)
    assert_one_line_error(r, "search.min_acc" if "acc" in " ".join(args) else "search.options.population", "must be")
    assert not (tmp_path / "s").exists()


def test_resume_into_another_searchs_run_dir_is_refused_touching_nothing(tmp_path, table):
    """Issue 23.15: a resume checked only that a journal existed: another search's result.json and
    config.yaml were replaced (another table or benchmark), and changed constraints were accepted."""
    path, _, _ = table
    args = ("--set", search_options(), "--max-macs", "30M")
    assert search_table(path, tmp_path / "s", *args, timeout=60).returncode == 0
    kept = [(tmp_path / "s" / name).read_bytes() for name in ("result.json", "config.yaml")]
    other = tmp_path / "other.csv"
    lines = path.read_text().splitlines()
    other.write_text("\n".join([lines[0], lines[1].rsplit(",", 1)[0] + ",0.5", *lines[2:]]) + "\n")
    r = search_table(other, tmp_path / "s", *args, "--resume", timeout=60)
    assert_one_line_error(r, "cannot resume", "other supernet, table or benchmark", "nothing was written")
    r = search_table(path, tmp_path / "s", *args[:4], "--max-macs", "40M", "--resume", timeout=60)
    assert_one_line_error(r, "cannot resume", "other constraints", "macs <= 30M -> macs <= 40M")
    assert [(tmp_path / "s" / name).read_bytes() for name in ("result.json", "config.yaml")] == kept
    assert search_table(path, tmp_path / "s", *args, "--resume", timeout=60).returncode == 0
