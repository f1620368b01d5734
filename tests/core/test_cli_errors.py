"""Tracebacks that used to escape the CLI (issue 15 item 15): each is one line now, or a quiet stop."""

import errno
import subprocess

from tests.conftest import assert_one_line_error, cli, cli_env, run_main


def test_spaces_into_a_closed_pipe_stops_quietly():
    proc = subprocess.Popen(cli("spaces", "--json"), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head` that has already exited
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err and err.strip() == "", err
    assert proc.returncode == 141


def test_cost_resolution_is_bounded_before_allocating():
    r = run_main("cost", "--space", "scarlet-s1", "--arch", ",".join(["0"] * 19), "--resolution", "1000000")
    assert_one_line_error(r, "too large", "--resolution")


def test_cost_with_a_missing_arch_file_names_the_file(tmp_path):
    r = run_main("cost", "--space", "scarlet-s1", "--arch", str(tmp_path / "result.json"))
    assert_one_line_error(r, "arch file", "not found")
    assert "layers" not in r.stderr


def test_disk_full_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    import supernet.core.io

    (tmp_path / "config.yaml").write_text("a: 1\n")
    (tmp_path / "other.html").write_text("old report")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(supernet.core.io.os, "fsync", full)
    r = run_main("report", str(tmp_path), "--out", str(tmp_path / "other.html"))
    assert_one_line_error(r, "No space left on device")
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
    r = run_main("spaces")
    assert_one_line_error(r, "No space left on device", "intact")


def _with_func(parser, func):
    parser.set_defaults(func=func)
    for action in parser._subparsers._group_actions:
        for sub in action.choices.values():
            sub.set_defaults(func=func)
    return parser


def test_cost_of_an_arch_with_an_empty_entry_names_the_layer():
    """Issue 28.15: `e3k3,,e3k3,...` was read with the entry dropped ('has 18 layers')."""
    arch = "e3k3,,e3k3," + ",".join(["e3k3"] * 17)
    r = run_main("cost", "--space", "scarlet-s1", "--arch", arch)
    assert_one_line_error(r, "empty entry at layer 1")
