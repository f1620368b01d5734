"""Two processes writing one run directory: the second is refused; a dead owner's lock is taken over."""

import json
import subprocess
import sys

import pytest

from supernet.core.rundir import RunLock, RunLocked


def test_second_writer_is_refused_with_owner_pid(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunLocked, match=r"in use by process \d+"):
            RunLock(tmp_path).acquire()
    RunLock(tmp_path).acquire().release()  # released: free again


def test_stale_lock_of_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / ".lock").write_text(json.dumps({"pid": pid, "host": __import__("socket").gethostname()}))
    lock = RunLock(tmp_path).acquire()
    assert json.loads((tmp_path / ".lock").read_text())["pid"] != pid
    lock.release()
    assert not (tmp_path / ".lock").exists()


def test_garbage_lock_file_is_treated_as_stale(tmp_path):
    (tmp_path / ".lock").write_text("\x00garbage")
    RunLock(tmp_path).acquire().release()


def test_cli_refuses_a_locked_run_dir(tmp_path):
    from tests.conftest import run_cli

    with RunLock(tmp_path / "run"):
        r = run_cli("train", "--run-dir", str(tmp_path / "run"), timeout=120)
    assert r.returncode == 2 and "in use by process" in r.stderr


RACE = """
import sys, time
from pathlib import Path
from supernet.core.rundir import RunLock, RunLocked
run, start = Path(sys.argv[1]), float(sys.argv[2])
while time.time() < start:
    pass
try:
    lock = RunLock(run).acquire()
except RunLocked:
    print("refused")
else:
    (run / "holders").open("a").write("x")
    time.sleep(0.3)
    print("held")
    lock.release()
"""


@pytest.mark.parametrize("trial", range(5))
def test_racing_processes_give_exactly_one_holder(tmp_path, trial):
    from tests.conftest import cli_env

    start = __import__("time").time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(tmp_path), str(start)],
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    said = sorted(o[0].strip() for o in outs)
    assert said.count("held") == (tmp_path / "holders").read_text().count("x")
    # all start within the holder's 0.3 s: exactly one holds, the rest are refused
    assert said.count("held") == 1, said


def test_racing_against_an_unwritten_lock_file_is_refused(tmp_path):
    """The old lock took an empty file (pid not yet written) for stale and deleted it: two holders."""
    with RunLock(tmp_path):
        (tmp_path / ".lock").write_text("")  # as if the holder had not written its pid yet
        with pytest.raises(RunLocked, match="in use by another process"):
            RunLock(tmp_path).acquire()


def test_lock_of_another_host_names_the_host_not_pid_minus_one(tmp_path):
    with RunLock(tmp_path):
        (tmp_path / ".lock").write_text(json.dumps({"pid": 4242, "host": "node-7"}))
        with pytest.raises(RunLocked) as e:
            RunLock(tmp_path).acquire()
    assert "process 4242 on host node-7" in str(e.value) and "process -1" not in str(e.value)


HOLD = (
    "import sys, time; from pathlib import Path; from supernet.core.rundir import RunLock; "
    "RunLock(Path(sys.argv[1])).acquire(); print('ok', flush=True); time.sleep(60)"
)


def test_lock_is_dropped_when_the_holder_is_killed(tmp_path):
    from tests.conftest import cli_env

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], env=cli_env(), stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "ok"
    with pytest.raises(RunLocked, match=f"process {holder.pid}"):
        RunLock(tmp_path).acquire()
    holder.kill()
    holder.wait()
    RunLock(tmp_path).acquire().release()
