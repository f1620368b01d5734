"""matplotlib's backend is the application's choice: only the `supernet` command sets one (Agg; issue 27.5)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import cli_env

pytest.importorskip("matplotlib")


def _backend_after(code: str) -> str:
    """The backend a fresh interpreter reports after `code`, which starts on the svg backend."""
    script = f"import matplotlib; matplotlib.use('svg'); {code}; print(matplotlib.get_backend())"
    out = subprocess.run([sys.executable, "-c", script], env=cli_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1].lower()


def test_the_library_draws_on_the_backend_its_user_chose():
    code = "from supernet.analysis.plots import plot_heatmap; plot_heatmap([[0.5]], ['a'], ['b'], 'h.png', 't')"
    assert _backend_after(f"import os, tempfile; os.chdir(tempfile.mkdtemp()); {code}") == "svg"


def test_the_command_draws_on_agg():
    code = "from supernet.cli import main; main(['report', '/nonexistent/run'])"  # fails after choosing Agg
    assert _backend_after(code) == "agg"
