"""Two processes writing one run directory: the second is refused; a dead owner's lock is taken over."""
import json
import subprocess
import sys

import pytest

from supernet.rundir import RunLock, RunLocked


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
    from tests.conftest import cli, cli_env

    with RunLock(tmp_path / "run"):
        r = subprocess.run(cli("train", "--run-dir", str(tmp_path / "run")), env=cli_env(), capture_output=True,
                           text=True, timeout=120)
    assert r.returncode == 2 and "in use by process" in r.stderr
