"""The command's entry points: `python -m supernet` and `--version`."""

import subprocess
import sys

from tests.conftest import cli_env


def test_python_dash_m_supernet_runs_the_cli():
    r = subprocess.run(
        [sys.executable, "-m", "supernet", "spaces"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "scarlet-s1" in r.stdout


def test_version_prints_the_package_version():
    from importlib.metadata import version

    r = subprocess.run(
        [sys.executable, "-m", "supernet.cli", "--version"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0 and r.stdout.strip() == f"supernet {version('supernet')}", (r.stdout, r.stderr)
