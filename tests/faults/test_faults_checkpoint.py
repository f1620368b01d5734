"""Checkpoints survive kills, full disks and corruption; loading never runs code from the file."""

import errno
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch

from supernet.core.errors import CheckpointError
from supernet.core.io import atomic_write
from supernet.train.checkpoint import find_checkpoint, load_checkpoint, remove_stale_temporaries, save_checkpoint
from tests.conftest import assert_one_line_error, cli_env, needs_fashion, run_cli, set_args, tiny_overrides


def _state(value: float) -> dict:
    return {"w": torch.full((256, 256), value)}


def test_previous_checkpoint_is_kept_and_loadable(tmp_path):
    save_checkpoint(tmp_path, {"global_step": 1}, _state(1.0))
    save_checkpoint(tmp_path, {"global_step": 2}, _state(2.0))
    assert load_checkpoint(tmp_path / "last.pt").meta["global_step"] == 2
    assert load_checkpoint(tmp_path / "prev.pt").state["w"][0, 0] == 1.0


def test_truncated_checkpoint_names_file_and_fallback(tmp_path):
    save_checkpoint(tmp_path, {"global_step": 1}, _state(1.0))
    save_checkpoint(tmp_path, {"global_step": 2}, _state(2.0))
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"last.pt is unreadable or corrupted.*prev.pt.*--fallback"):
        load_checkpoint(tmp_path / "last.pt")


def test_checkpoint_of_another_space_is_refused_naming_both(tmp_path):
    save_checkpoint(tmp_path, {"space_fingerprint": "aaaa"}, _state(0.0))
    with pytest.raises(CheckpointError, match="space_fingerprint='aaaa'.*space_fingerprint='bbbb'"):
        load_checkpoint(tmp_path / "last.pt", expect={"space_fingerprint": "bbbb"})


def test_other_format_version_is_refused(tmp_path):
    torch.save({"format": "x", "meta": '{"format": "supernet.checkpoint/0"}', "state": {}}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="format 'supernet.checkpoint/0'"):
        load_checkpoint(tmp_path / "old.pt")


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_loading_never_executes_code_from_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"format": "supernet.checkpoint/1", "meta": "{}", "state": _Evil()}, f)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "PWNED").exists()


def test_full_disk_keeps_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"global_step": 1}, _state(1.0))
    import supernet.train.checkpoint as ckpt

    def failing_atomic_write(path, write, **kwargs):
        def half_then_enospc(f):
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")

        atomic_write(path, half_then_enospc, **kwargs)

    monkeypatch.setattr(ckpt, "atomic_write", failing_atomic_write)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(tmp_path, {"global_step": 2}, _state(2.0))
    assert load_checkpoint(tmp_path / "last.pt").meta["global_step"] == 1
    assert not list(tmp_path.glob(".*.tmp"))


_WRITER = """
import sys, torch
from supernet.train.checkpoint import save_checkpoint
step = 0
while True:
    step += 1
    save_checkpoint(sys.argv[1], {"global_step": step}, {"w": torch.full((512, 512), float(step))})
"""


@pytest.mark.parametrize("delay", [0.05, 0.17, 0.31, 0.53])
def test_sigkill_during_checkpoint_writes_leaves_a_complete_checkpoint(tmp_path, delay):
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)], env=cli_env())
    deadline = time.time() + 60
    while not (tmp_path / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ckpt = load_checkpoint(find_checkpoint(tmp_path))  # last.pt, or prev.pt if killed between the renames
    assert ckpt.state["w"][0, 0].item() == ckpt.meta["global_step"]
    remove_stale_temporaries(tmp_path)
    assert not list(tmp_path.glob(".*.tmp"))


@needs_fashion
def test_corrupted_last_checkpoint_resumes_from_previous_with_fallback(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--run-dir", str(run), *set_args(tiny_overrides(train__epochs=2))]
    run_cli(*args, code=0)
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    assert_one_line_error(run_cli(*args, "--resume"), "--fallback")
    run_cli(*args, "--resume", "--fallback", code=0)
    assert (
        load_checkpoint(last).meta["global_step"]
        == 2 * load_checkpoint(run / "checkpoints" / "prev.pt").meta["global_step"]
    )
    assert (run / "checkpoints" / "last.0.bad.pt").stat().st_size == 1000  # the bad file is kept aside


def test_kill_between_the_two_renames_resumes_from_previous(tmp_path):
    save_checkpoint(tmp_path, {"global_step": 1}, _state(1.0))
    save_checkpoint(tmp_path, {"global_step": 2}, _state(2.0))
    (tmp_path / "last.pt").unlink()  # the state a kill after `last -> prev` and before `tmp -> last` leaves
    assert load_checkpoint(find_checkpoint(tmp_path)).meta["global_step"] == 1
