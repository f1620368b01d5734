"""A trained supernet's run: the config it was trained with is applied to a copy, never to the caller's."""

from __future__ import annotations

from pathlib import Path

import pytest

from supernet.config.schema import Config
from supernet.core.rundir import CHECKPOINTS, CONFIG, LAST
from supernet.runs.load import default_config, supernet_run_dir, trained_config

META = {
    "data": {"name": "cifar10", "root": "/somewhere", "val_size": 500, "split_seed": 3},
    "space": "scarlet-s1",
    "space_options": {},
    "supernet": {},
}


def test_trained_config_is_a_copy():
    cfg = Config()
    out = trained_config(cfg, META)
    assert out.data.name == "cifar10" and out.data.split_seed == 3
    assert cfg.data.name == "fashion-mnist" and cfg.data.split_seed == 0
    assert out.train is cfg.train  # the other sections are the caller's


class _Stop(Exception):
    pass


def test_search_supernet_leaves_the_callers_config_alone(monkeypatch, tmp_path):
    """The search runs on a copy carrying the supernet's data; the caller's config keeps its own."""
    import supernet.jobs.search as wf

    seen = {}
    monkeypatch.setattr(wf, "load_supernet", lambda path: (object(), META))

    def stop(cfg, splits_or_net, *rest):
        seen["cfg"] = cfg
        raise _Stop

    monkeypatch.setattr(wf, "load_data", lambda cfg: stop(cfg, None))
    cfg = Config()
    with pytest.raises(_Stop):
        wf.search_supernet(cfg, tmp_path / "sn", tmp_path / "search")
    assert seen["cfg"].data.name == "cifar10"
    assert cfg.data.name == "fashion-mnist"


def test_run_dir_of_a_checkpoint_and_its_config(tmp_path):
    run = tmp_path / "run"
    (run / CHECKPOINTS).mkdir(parents=True)
    (run / CHECKPOINTS / LAST).write_bytes(b"")
    assert supernet_run_dir(run / CHECKPOINTS / LAST) == run and supernet_run_dir(run) == run
    (run / CONFIG).write_text("train:\n  epochs: 7\n")
    assert default_config(run / CHECKPOINTS / LAST).train.epochs == 7
    assert default_config(run, overrides=["train.epochs=2"]).train.epochs == 2
    assert default_config(Path(tmp_path / "elsewhere.pt")).train.epochs == Config().train.epochs
