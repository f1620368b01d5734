"""Training health: NaN/inf stops the run with the last checkpoint intact; one-shot model histograms."""

import json
import math

import pytest
import torch
from train_helpers import make_trainer, synthetic_dataset, tiny_space

from supernet.data import BatchLoader
from supernet.model.supernet import Supernet
from supernet.train.checkpoint import load_checkpoint
from supernet.train.hooks import HealthProbe
from supernet.train.loop import TrainingDiverged
from tests.conftest import needs_fashion, tiny_overrides


@pytest.mark.parametrize("how", ["injected", "huge-lr"])
def test_nan_loss_stops_with_the_previous_checkpoint_intact(tmp_path, how):
    torch.manual_seed(0)
    space = tiny_space()
    net = Supernet(space)
    box = {}
    if how == "injected":  # NaN logits at the first step of epoch 2

        def forward(x, a):
            out = net(x, a)
            return out * math.nan if box["trainer"].global_step == 4 else out

        trainer = box["trainer"] = make_trainer(net, tmp_path, steps=2, epochs=4, forward=forward)
    else:  # two good epochs, then the run is resumed with a learning rate that blows the weights up
        make_trainer(net, tmp_path, steps=2, epochs=2).fit()
        net = Supernet(space)
        trainer = make_trainer(net, tmp_path, steps=2, epochs=4, lr=1e30)
        assert trainer.resume()
    saved = {4: {k: v.clone() for k, v in net.state_dict().items()}} if how == "huge-lr" else {}
    real_save = trainer.save

    def save():
        saved[trainer.global_step] = {k: v.clone() for k, v in net.state_dict().items()}
        return real_save()

    trainer.save = save
    with pytest.raises(TrainingDiverged, match="loss became (nan|inf)"):
        trainer.fit()
    assert trainer.global_step >= 4
    last = tmp_path / "checkpoints" / "last.pt"
    ckpt = load_checkpoint(last, expect={"kind": "supernet"})
    step = ckpt.meta["global_step"]
    assert step == max(saved) and step <= trainer.global_step
    for k, v in ckpt.state["model"].items():
        assert torch.equal(v, saved[step][k]), k
        assert not v.is_floating_point() or torch.isfinite(v).all(), k
    fresh = Supernet(space)
    fresh.load_state_dict(ckpt.state["model"])
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["loss"]) for r in rows)


def test_health_probe_writes_a_histogram_and_leaves_training_state_alone(tmp_path):
    space = tiny_space()

    def run(run_dir, k):
        torch.manual_seed(0)
        net = Supernet(space)
        val = list(BatchLoader(synthetic_dataset(32, seed=1), 16))
        recal = [x for x, _ in BatchLoader(synthetic_dataset(32, seed=2), 16)]
        trainer = make_trainer(net, run_dir, steps=2, epochs=2, hooks=[HealthProbe(net, k, recal, val)])
        return net, trainer.fit()

    net, epochs = run(tmp_path / "a", 5)
    plain, plain_epochs = run(tmp_path / "b", 0)
    for row in epochs:
        assert len(row["health_acc"]) == 5 and all(0 <= a <= 1 for a in row["health_acc"])
        assert sum(row["health_hist"]) == 5 and len(row["health_hist"]) == 10
    assert "health_acc" not in plain_epochs[0]
    logged = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [r["health_hist"] for r in logged if r["type"] == "epoch"] == [r["health_hist"] for r in epochs]
    a, b = net.state_dict(), plain.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # probing changed no weight and no BN statistic


@needs_fashion
def test_inter_choice_runs_recalibrate_without_reset_by_default(tmp_path, monkeypatch):
    # inter-choice weights App. B: resetting the BN statistics before scoring was detrimental for the method
    from supernet.config.schema import load_config
    from supernet.jobs.train import train_supernet
    from supernet.runs.build import build_evaluator, load_data
    from supernet.runs.load import load_supernet

    resets = []

    class Recording(HealthProbe):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            resets.append(self.reset)

    monkeypatch.setattr("supernet.train.hooks.HealthProbe", Recording)
    overrides = tiny_overrides(
        train__epochs=1,
        train__max_steps_per_epoch=1,
        train__health_models=1,
        data__train_limit=256,
        supernet__interchoice="bias",
        supernet__interchoice_bias_at="pre_act",
    )
    cfg = load_config(None, overrides)
    train_supernet(cfg, tmp_path / "run")
    net, _ = load_supernet(tmp_path / "run")
    assert resets == [False] and build_evaluator(cfg, net, load_data(cfg)).reset is False
