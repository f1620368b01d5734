"""The SQLite search journal: round trip, bad files, resume equivalence, SIGKILL."""

import importlib.util
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from supernet.core.errors import SearchError
from supernet.search import (
    CES_OBJECTIVES,
    SCARLET_OBJECTIVES,
    Constraint,
    Journal,
    Problem,
    create_strategy,
    evaluation_key,
    run_journaled,
    run_search,
)
from supernet.space import Arch

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"
SCRIPT = HERE / "journal_search_script.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("journal_search_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_round_trip(tmp_path, small_space):
    a, b = small_space.sample(random.Random(0)), small_space.sample(random.Random(1))
    path = tmp_path / "journal.sqlite"
    with Journal(path) as j:
        assert j.record("k1", a, {"accuracy": 0.1 + 0.2, "macs": 3e7}, generation=0, seconds=1.5)
        assert j.record("k1", b, {"accuracy": 0.5}, generation=2)
        assert not j.record("k1", a, {"accuracy": 0.9})  # (key, arch) is unique: first result kept
        assert j.record("k2", a, {"accuracy": 0.7})
        assert j._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Journal(path) as j:  # persisted
        assert len(j) == 3
        assert j.lookup("k1", small_space) == {a: {"accuracy": 0.1 + 0.2, "macs": 3e7}, b: {"accuracy": 0.5}}
        assert j.lookup("k2") == {a: {"accuracy": 0.7}} and j.lookup("nope") == {}
        rows = j.rows("k1")
        expected = [(a.to_string(), 0, 1.5), (b.to_string(), 2, None)]
        assert [(r["arch"], r["generation"], r["seconds"]) for r in rows] == expected
        assert rows[0]["metrics"]["accuracy"] == 0.1 + 0.2 and rows[0]["key"] == "k1" and rows[0]["recorded_at"] > 0
        assert [r["key"] for r in j.rows()] == ["k1", "k1", "k2"]
    with pytest.raises(SearchError, match="closed"):
        j.rows()


def test_bad_files_give_one_line_errors(tmp_path, small_space):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database\n" * 200)
    for path in (garbage, tmp_path):  # a non-SQLite file, a directory
        with pytest.raises(SearchError) as e:
            Journal(path)
        assert str(path) in str(e.value) and "\n" not in str(e.value)
    other = tmp_path / "other.sqlite"
    with closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE evaluations (x INTEGER)")
        conn.commit()
    with pytest.raises(SearchError, match="not a search journal"):
        Journal(other)
    wrong = tmp_path / "wrong.sqlite"
    with Journal(wrong) as j:
        j.record("k", Arch(("nope",) * small_space.num_layers), {"accuracy": 0.5})
        with pytest.raises(SearchError, match="wrong.sqlite: journal arch does not fit the space"):
            j.lookup("k", small_space)


def test_evaluation_key():
    @dataclass(frozen=True)
    class Settings:
        recal_batches: int = 20
        seed: int = 0

    assert evaluation_key("abc", Settings()) == evaluation_key("abc", {"seed": 0, "recal_batches": 20})
    assert evaluation_key("abc", Settings()).startswith("abc:")
    assert evaluation_key("abc", Settings(seed=1)) != evaluation_key("abc", Settings())
    assert evaluation_key("abd", Settings()) != evaluation_key("abc", Settings())


def _factories(space, costs):
    budget = Problem(constraints=(Constraint("macs", max=60e6),))
    scarlet = Problem(SCARLET_OBJECTIVES, budget.constraints)
    lat = lambda a: {**costs(a), "latency_ms": costs(a)["macs"] / 1e6}  # noqa: E731
    ces = Problem(CES_OBJECTIVES, (Constraint("latency_ms", 20, 60),))
    return {
        "evolution": lambda: create_strategy(
            "evolution", space, budget, costs, random.Random(3), population=10, iterations=5, topk=4
        ),
        "nsga2": lambda: create_strategy(
            "nsga2", space, scarlet, costs, random.Random(3), population=8, generations=5, acc_min=0.2
        ),
        "ces": lambda: create_strategy("ces", space, ces, lat, random.Random(3), population=8, iterations=5),
    }


@pytest.mark.parametrize("name", ["evolution", "nsga2", "ces"])
def test_resume_from_half_a_journal_replays_the_same_search(tmp_path, small_space, costs, make_target_eval, name):
    make = _factories(small_space, costs)[name]
    base = make_target_eval(small_space.sample(random.Random(8)))
    calls = []

    def counting(arch):
        calls.append(arch)
        return base(arch)

    with Journal(tmp_path / "full.sqlite") as full:
        first = run_journaled(make(), counting, full, "key", small_space)
        rows = full.rows("key")
    evaluated = list(calls)
    assert [r["arch"] for r in rows] == [a.to_string() for a in evaluated] and len(set(evaluated)) == len(evaluated)
    assert first.to_dict() == run_search(make(), base).to_dict()  # journaling does not change the search
    half = len(rows) // 2
    with Journal(tmp_path / "half.sqlite") as part:
        for r in rows[:half]:
            part.record("key", small_space.parse_arch(r["arch"]), r["metrics"], r["generation"], r["seconds"])
        calls.clear()
        resumed = run_journaled(make(), counting, part, "key", small_space)
        assert calls == evaluated[half:]  # only the missing archs, in the same order
        assert resumed.to_dict() == first.to_dict()  # same final result and history
        assert [r["arch"] for r in part.rows("key")] == [r["arch"] for r in rows]
        assert [r["generation"] for r in part.rows("key")] == [r["generation"] for r in rows]
    # the plain driver gives the same with a cache of the first half
    calls.clear()
    cache = {a: base(a) for a in evaluated[:half]}
    assert run_search(make(), counting, cache=cache).to_dict() == first.to_dict() and calls == evaluated[half:]


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}


def test_sigkill_mid_search_then_resume(tmp_path):
    script = _load_script()
    space = script.space()
    reference = run_search(script.strategy(space), script.accuracy)
    total = len({r["arch"] for r in reference.history})
    journal, out = tmp_path / "journal.sqlite", tmp_path / "result.json"
    cmd = [sys.executable, str(SCRIPT), str(journal), str(out)]
    proc = subprocess.Popen(cmd + ["0.004"], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    count = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
        if journal.exists():
            try:
                with closing(sqlite3.connect(journal)) as conn:
                    count = conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
            except sqlite3.Error:
                continue
            if count >= total // 3:
                break
    assert proc.poll() is None, proc.communicate()  # still running: killed mid-way
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not out.exists()
    with Journal(journal) as j:
        before = j.rows(script.KEY)
    assert total // 3 <= len(before) < total
    assert len({r["arch"] for r in before}) == len(before)
    done = subprocess.run(cmd + ["0"], env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with Journal(journal) as j:
        after = j.rows(script.KEY)
    assert int(done.stdout.strip()) == total - len(before)  # only the missing archs evaluated
    assert after[: len(before)] == before  # nothing lost or rewritten
    assert [r["arch"] for r in after] == list(dict.fromkeys(r["arch"] for r in reference.history))  # no duplicates
    assert json.loads(out.read_text()) == json.loads(json.dumps(reference.to_dict()))


def test_out_of_range_rows_are_dropped_with_a_warning_and_replaced(tmp_path, small_space, caplog):
    """Issue 23.14: NaN accuracies reached result.json ("accuracy": NaN) and 5.0 was picked as best."""
    a, b, c = (small_space.sample(random.Random(i)) for i in range(3))
    path = tmp_path / "journal.sqlite"
    with Journal(path) as j:
        j.record("k", a, {"accuracy": float("nan")})
        j.record("k", b, {"accuracy": 5.0})
        j.record("k", c, {"accuracy": 0.5, "macs": 1e6})
    with Journal(path) as j:
        assert j.lookup("k", small_space) == {c: {"accuracy": 0.5, "macs": 1e6}}
        assert "ignored 2 evaluation(s) with out-of-range metrics" in caplog.text  # a logged warning
        assert j.record("k", b, {"accuracy": 0.25})  # the fresh evaluation replaces the dropped row
    with Journal(path) as j:
        assert j.lookup("k", small_space) == {b: {"accuracy": 0.25}, c: {"accuracy": 0.5, "macs": 1e6}}
