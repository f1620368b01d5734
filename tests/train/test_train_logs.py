"""What a training run logs (issue 27.4): metrics.jsonl opened once per run, TensorBoard events read back."""

from __future__ import annotations

import json
import pathlib
import sys

import pytest
import torch
from torch import nn
from train_helpers import synthetic_dataset

from supernet.data import BatchLoader
from supernet.train.loop import OptimConfig, Trainer
from tests.conftest import assert_one_line_error, run_main, set_args, tiny_overrides

STEPS, EPOCHS = 4, 2  # 32 images in batches of 8, two epochs


def _trainer(run_dir: pathlib.Path, tensorboard: bool = False) -> Trainer:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    loader = BatchLoader(synthetic_dataset(32), 8, shuffle=True, seed=0, drop_last=True)
    cfg = OptimConfig(epochs=EPOCHS, lr=0.05, progress=False)
    return Trainer(
        model, lambda x, _: model(x), lambda e, s: [None], loader, cfg, run_dir, {"kind": "x"}, tensorboard=tensorboard
    )


def test_metrics_file_is_opened_once_per_run_and_holds_one_json_line_per_row(tmp_path, monkeypatch):
    """It was re-opened (and its folder re-created) at every step."""
    opened, real_open = [], pathlib.Path.open

    def counting_open(self, *args, **kwargs):
        if self.name == "metrics.jsonl":
            opened.append(args[0] if args else kwargs.get("mode", "r"))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", counting_open)
    trainer = _trainer(tmp_path / "run")
    trainer.fit()
    assert opened == ["a"]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == EPOCHS * (STEPS + 1)
    assert all(line == json.dumps(json.loads(line)) for line in lines)  # the bytes json.dumps writes
    assert trainer._log_file is None  # closed when the run ends


def test_metrics_file_is_closed_when_training_fails(tmp_path):
    trainer = _trainer(tmp_path / "run")
    trainer.forward = lambda x, _: torch.full((len(x), 10), float("nan"), requires_grad=True)
    with pytest.raises(Exception, match="loss became nan"):
        trainer.fit()
    assert trainer._log_file is None


def test_tensorboard_events_hold_the_steps_and_epochs_of_metrics_jsonl(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    _trainer(run, tensorboard=True).fit()
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r["type"] == "step"]
    for tag, field in (("train/loss", "loss"), ("train/acc", "acc"), ("train/lr", "lr")):
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [r["global_step"] for r in steps]
        assert [e.value for e in logged] == pytest.approx([r[field] for r in steps], rel=1e-6)
    speeds = events.Scalars("train/images_per_s")
    assert len(speeds) == EPOCHS * STEPS and all(e.value > 0 for e in speeds)
    epochs = [r for r in rows if r["type"] == "epoch"]
    logged = events.Scalars("epoch/acc_mean")
    assert [(e.step, e.value) for e in logged] == [(r["end_step"], pytest.approx(r["acc_mean"])) for r in epochs]


def test_no_tensorboard_folder_without_the_setting(tmp_path):
    _trainer(tmp_path / "run").fit()
    assert (tmp_path / "run" / "metrics.jsonl").is_file() and not (tmp_path / "run" / "tensorboard").exists()


def test_log_tensorboard_without_the_package_is_a_one_line_error_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard now fails as if not installed
    run = tmp_path / "run"
    r = run_main("train", "--run-dir", str(run), *set_args(tiny_overrides(log__tensorboard="true")))
    assert_one_line_error(r, "log.tensorboard", "supernet[tensorboard]")
    assert not run.exists()  # refused before anything was written: the folder the command made is gone too
