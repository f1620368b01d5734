"""Tracebacks that used to escape the CLI (issue 15 item 15): each is one line now, or a quiet stop."""

import contextlib
import errno
import io
import subprocess

from supernet.cli import main
from tests.conftest import cli, cli_env


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def one_line(code: int, err: str, *needles: str) -> None:
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


def test_spaces_into_a_closed_pipe_stops_quietly():
    proc = subprocess.Popen(cli("spaces", "--json"), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head` that has already exited
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err and err.strip() == "", err
    assert proc.returncode == 141


def test_cost_resolution_is_bounded_before_allocating():
    code, _, err = run("cost", "--space", "scarlet-s1", "--arch", ",".join(["0"] * 19), "--resolution", "1000000")
    one_line(code, err, "too large", "--resolution")


def test_cost_with_a_missing_arch_file_names_the_file(tmp_path):
    code, _, err = run("cost", "--space", "scarlet-s1", "--arch", str(tmp_path / "result.json"))
    one_line(code, err, "arch file", "not found")
    assert "layers" not in err


def test_disk_full_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    import supernet.io

    (tmp_path / "config.yaml").write_text("a: 1\n")
    (tmp_path / "other.html").write_text("old report")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(supernet.io.os, "fsync", full)
    code, _, err = run("report", str(tmp_path), "--out", str(tmp_path / "other.html"))
    one_line(code, err, "No space left on device")
    assert (tmp_path / "other.html").read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "other.html"]


def test_disk_full_outside_the_report_is_one_line(tmp_path, monkeypatch):
    """The generic path: an ENOSPC from any command's write reaches the CLI as one line."""
    import supernet.cli

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))

    monkeypatch.setattr(supernet.cli, "cmd_spaces", full)
    parser_func = supernet.cli.build_parser
    monkeypatch.setattr(supernet.cli, "build_parser", lambda: _with_func(parser_func(), full))
    code, _, err = run("spaces")
    one_line(code, err, "No space left on device", "intact")


def _with_func(parser, func):
    parser.set_defaults(func=func)
    for action in parser._subparsers._group_actions:
        for sub in action.choices.values():
            sub.set_defaults(func=func)
    return parser
