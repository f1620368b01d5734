"""examples/quickstart.py, the README's "Python API" example, runs as written and reloads what it exported."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO, cli_env


def test_quickstart_runs_as_written_and_reloads_its_export(tmp_path):
    """(Its speed is printed by the script itself; a timed assertion fails on a busy machine.)"""
    env = dict(cli_env(), TMPDIR=str(tmp_path))
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py")], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("54 archs; trained 48 steps")
    assert "best under 700K MACs" in lines[1]
    assert lines[2].endswith("reloaded model agrees: True")
    assert f"exported to {tmp_path}/quickstart-" in lines[2]
    assert not list(tmp_path.glob("quickstart-*")), "the quickstart left its export folder behind"


def test_quickstart_fits_in_30_lines():
    """Issue 27.5: one screen; every line that is not blank counts (docstring and imports too)."""
    lines = [line for line in (REPO / "examples" / "quickstart.py").read_text().splitlines() if line.strip()]
    assert len(lines) <= 30, f"examples/quickstart.py has {len(lines)} non-blank lines"
