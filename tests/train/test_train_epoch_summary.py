"""The epoch summary after a mid-epoch resume covers the whole epoch (issue 15 item 6)."""

import json

import pytest
import torch
from torch import nn
from train_helpers import synthetic_dataset

from supernet.data import BatchLoader
from supernet.train.loop import OptimConfig, Trainer


class Killed(Exception):
    pass


def _trainer(run_dir, kill_at=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    calls = {"n": 0}

    def forward(x, _):
        calls["n"] += 1
        if kill_at is not None and calls["n"] > kill_at:
            raise Killed
        return model(x)

    loader = BatchLoader(synthetic_dataset(64), 8, shuffle=True, seed=0, drop_last=True)
    cfg = OptimConfig(epochs=2, lr=0.05, checkpoint_every_steps=3, progress=False)
    return Trainer(model, forward, lambda e, s: [None], loader, cfg, run_dir, {"kind": "standalone"})


def _epoch_rows(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["type"] == "epoch"]


@pytest.mark.parametrize("log_lost", [False, True])
def test_epoch_summary_after_mid_epoch_resume_covers_the_whole_epoch(tmp_path, log_lost):
    reference = _trainer(tmp_path / "ref")
    reference.fit()
    with pytest.raises(Killed):
        _trainer(tmp_path / "run", kill_at=5).fit()  # killed in epoch 0 after the step-3 checkpoint
    if log_lost:  # the summary must come from the checkpoint, not from re-reading the log
        (tmp_path / "run" / "metrics.jsonl").unlink()
    resumed = _trainer(tmp_path / "run")
    assert resumed.resume() and resumed.global_step == 3
    summaries = resumed.fit()
    expected = _epoch_rows(tmp_path / "ref")
    logged = _epoch_rows(tmp_path / "run")
    assert [r["epoch"] for r in logged] == [0, 1]
    for got in (summaries, logged):
        for row, want in zip(got, expected, strict=True):
            for key in ("loss", "acc_mean", "acc_std", "end_step"):
                assert row[key] == pytest.approx(want[key], abs=1e-6), (key, row, want)
