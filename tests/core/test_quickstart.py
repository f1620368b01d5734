"""examples/quickstart.py, the README's "Python API" example, runs as written and reloads what it exported."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.conftest import REPO, cli_env


def test_quickstart_runs_in_under_30_seconds(tmp_path):
    env = dict(cli_env(), TMPDIR=str(tmp_path))
    start = time.time()
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py")], env=env, capture_output=True, text=True, timeout=120
    )
    seconds = time.time() - start
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("54 archs; trained 48 steps")
    assert "best under 700K MACs" in lines[1]
    assert lines[2].endswith("reloaded model agrees: True")
    assert f"exported to {tmp_path}/quickstart-" in lines[2]
    assert not list(tmp_path.glob("quickstart-*")), "the quickstart left its export folder behind"
    assert seconds < 30, f"the quickstart took {seconds:.0f} s"
