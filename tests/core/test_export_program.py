"""A `.pt2` program that torch.export cannot make is reported, not swallowed (issue 27.5)."""

from __future__ import annotations

import json
import random

import torch

import supernet
from supernet.core.logs import stderr_logging


def test_a_failed_torch_export_says_why_on_stderr_and_in_model_json(tmp_path, tiny_space, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise RuntimeError("Could not guard on data-dependent expression u0 < 0\n(a long explanation follows)")

    monkeypatch.setattr(torch.export, "export", refuse)
    net = supernet.build_supernet(tiny_space)
    arch = tiny_space.sample(random.Random(0))
    with stderr_logging():  # as the command line shows log records
        model = supernet.export(net, arch, tmp_path / "e")
    why = "RuntimeError: Could not guard on data-dependent expression u0 < 0"
    err = capsys.readouterr().err
    assert f"model.pt2 not written ({why})" in err and len(err.strip().splitlines()) == 1
    assert json.loads((tmp_path / "e" / "model.json").read_text())["torch_export_error"] == why
    assert not (tmp_path / "e" / "model.pt2").exists()
    x = model.example_input(2)
    assert torch.equal(model(x), supernet.load_exported(tmp_path / "e")(x))  # config and weights are complete
