"""Logging (issue 27.4): module loggers under `supernet`, a stderr handler only in the CLI, -v/-q, no print
outside cli.py, progress lines on stderr, a search's best-so-far per generation in TensorBoard."""

from __future__ import annotations

import ast
import csv
import json
import logging

import pytest

from supernet.core.logs import ROOT, get_logger, set_verbosity, verbosity_level
from tests.conftest import REPO, needs_fashion, run_main, set_args, tiny_overrides

SPACE = ["--space", "nas-bench-macro"]


def test_module_loggers_sit_under_one_root():
    search, plugin = get_logger("supernet.jobs.search"), get_logger("my_plugin")
    assert (search.name, plugin.name) == ("supernet.jobs.search", "supernet.my_plugin")
    try:
        set_verbosity(logging.DEBUG)  # one level for the whole package
        assert search.getEffectiveLevel() == plugin.getEffectiveLevel() == logging.DEBUG
    finally:
        set_verbosity(logging.NOTSET)


@pytest.mark.parametrize(
    ("verbose", "quiet", "level"),
    [
        (0, 0, logging.INFO),
        (1, 0, logging.DEBUG),
        (3, 0, logging.DEBUG),
        (0, 1, logging.WARNING),
        (0, 2, logging.ERROR),
        (0, 5, logging.ERROR),
    ],
)
def test_verbosity_levels(verbose, quiet, level):
    assert verbosity_level(verbose, quiet) == level


def test_print_is_only_in_the_cli():
    """The library logs; only the command prints (its results on stdout, its one-line errors)."""
    found = []
    for path in sorted((REPO / "src" / "supernet").rglob("*.py")):
        if path.name == "cli.py" and path.parent.name == "supernet":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == []


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """Accuracies of every nas-bench-macro arch (3^8), made up from the op indices."""
    from supernet.space import create_space

    space = create_space("nas-bench-macro")
    path = tmp_path_factory.mktemp("table") / "table.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "accuracy"])
        for index in range(space.size):
            digits = [(index // 3**i) % 3 for i in range(space.num_layers)]
            w.writerow([space.from_indices(digits).to_string(), round(0.5 + sum(digits) / 40 + (index % 7) / 1000, 5)])
    return path


def _search(table, run_dir, before: tuple[str, ...] = (), after: tuple[str, ...] = (), *sets: str):
    """`supernet [before] search --table TABLE ... [after]` in this process."""
    args = set_args(["search.options={num_samples: 20}", "search.progress=false", "search.strategy=random", *sets])
    return run_main(*before, "search", "--table", str(table), *SPACE, "--run-dir", str(run_dir), *args, *after)


VERBOSITY = [((), True, False), (("-q",), False, False), (("-v",), True, True)]  # flags, info shown, debug shown


@pytest.mark.parametrize(("flags", "info", "debug"), VERBOSITY)
@pytest.mark.parametrize("where", ["before", "after"])
def test_verbosity_flags_before_or_after_the_verb(tmp_path, table, flags, info, debug, where):
    r = _search(table, tmp_path / "s", flags if where == "before" else (), flags if where == "after" else ())
    assert r.returncode == 0, r.stderr
    assert ("search: 20 archs evaluated" in r.stderr) == info, r.stderr
    assert ("search: random over nas-bench-macro" in r.stderr) == debug, r.stderr
    assert r.stdout.startswith("best ")  # results on stdout whatever the verbosity
    assert not logging.getLogger(ROOT).handlers  # the command's handler is gone once main returns


def test_the_library_adds_no_handler():
    import supernet.jobs.search  # noqa: F401

    assert logging.getLogger(ROOT).handlers == [] and logging.getLogger(ROOT).level == logging.NOTSET


def test_search_writes_the_best_so_far_per_generation_to_tensorboard(tmp_path, table):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "s"
    sets = ("search.strategy=evolution", "search.options={population: 6, iterations: 3}", "log.tensorboard=true")
    r = _search(table, run, (), (), *sets)
    assert r.returncode == 0, r.stderr
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    best = events.Scalars("search/best_accuracy")
    generations = [e.step for e in best]
    assert generations == sorted(set(generations)) and len(generations) >= 3
    values = [e.value for e in best]
    assert values == sorted(values)  # best so far never drops
    result = json.loads((run / "result.json").read_text())
    assert values[-1] == pytest.approx(result["best_metrics"]["accuracy"])
    assert events.Scalars("search/evaluated")[-1].value == len(result["history"])


@needs_fashion
def test_groundtruth_progress_goes_to_stderr_and_results_to_stdout(tmp_path):
    """Its per-arch lines went to stdout, mixed with the result line."""
    r = run_main("groundtruth", "--run-dir", str(tmp_path / "gt"), "--sample", "1", *set_args(tiny_overrides()))
    assert r.returncode == 0, r.stderr
    assert "[1/1] arch 0" in r.stderr and "[1/1]" not in r.stdout
    assert r.stdout.startswith("shard 0/1: trained 1")
