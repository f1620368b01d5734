"""Mixed precision and devices in the training loop: bf16 autocast, the fp16 scaler's checkpointed state,
and a run resumed under another device / precision / memory-format setting."""

from pathlib import Path

import pytest
import torch
from torch import nn
from train_helpers import make_trainer, tiny_space

from supernet.core.device import Runtime
from supernet.train.loop import TrainHook


class _Record(TrainHook):
    """Sets the fp16 scale to a value a fresh scaler never has, before the epoch's checkpoint."""

    def epoch_end(self, trainer, epoch):
        trainer.scaler.update(new_scale=1234.0)
        return {}


def test_bf16_training_runs_convolutions_in_bf16_and_keeps_fp32_weights(tmp_path):
    from supernet.model.supernet import Supernet

    net = Supernet(tiny_space())
    dtypes = set()
    conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    conv.register_forward_hook(lambda m, i, out: dtypes.add(out.dtype))
    trainer = make_trainer(net, tmp_path, steps=2, epochs=1, runtime=Runtime(amp="bf16", channels_last=True))
    rows = trainer.fit()
    assert dtypes == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert rows[0]["loss"] == rows[0]["loss"]  # finite, not NaN


def test_fp16_grad_scaler_state_is_checkpointed_and_resumed(tmp_path):
    from supernet.model.supernet import Supernet
    from supernet.train.checkpoint import load_checkpoint

    fp16 = Runtime(amp="fp16", channels_last=False)  # CPU fp16 for the test only; the CLI refuses it
    first = make_trainer(Supernet(tiny_space()), tmp_path, steps=2, epochs=2, hooks=[_Record()], runtime=fp16)
    first.fit()
    saved = load_checkpoint(tmp_path / "checkpoints" / "last.pt").state["scaler"]
    assert saved["scale"] == 1234.0
    again = make_trainer(Supernet(tiny_space()), tmp_path, steps=2, epochs=2, runtime=fp16)
    assert again.resume()
    assert again.scaler.get_scale() == 1234.0
    plain = make_trainer(Supernet(tiny_space()), tmp_path, steps=2, epochs=2, runtime=Runtime())
    assert plain.resume() and not plain.scaler.is_enabled()  # an fp16 checkpoint resumes in fp32 too


# -- the CLI's verbs: a checkpoint made under one device setting resumes under another ------------------


def _config(tmp_path, **extra):
    from supernet.config.schema import load_config
    from tests.conftest import tiny_overrides

    return load_config(None, tiny_overrides(train__epochs=2, **extra))


def _train_until_first_checkpoint(monkeypatch, cfg, run_dir):
    from supernet.jobs.train import train_supernet
    from supernet.train.loop import Trainer

    original = Trainer.save

    def save_then_die(self):
        original(self)
        raise KeyboardInterrupt  # "killed" right after the first epoch's checkpoint

    monkeypatch.setattr(Trainer, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(cfg, run_dir)
    monkeypatch.setattr(Trainer, "save", original)
    return Path(run_dir)


def _weights(run_dir):
    from supernet.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(Path(run_dir) / "checkpoints" / "last.pt")
    return ckpt.meta["global_step"], ckpt.state["model"]


@pytest.mark.usefixtures("_fashion")
def test_resume_under_another_device_setting_continues_exactly(tmp_path, monkeypatch):
    from supernet.jobs.train import train_supernet

    cfg = _config(tmp_path)
    cfg.device = "cpu"
    train_supernet(cfg, tmp_path / "ref")
    _train_until_first_checkpoint(monkeypatch, cfg, tmp_path / "run")
    cfg.device = "auto"  # CPU here: the same numbers
    train_supernet(cfg, tmp_path / "run", resume=True)
    (ref_step, ref), (step, run) = _weights(tmp_path / "ref"), _weights(tmp_path / "run")
    assert step == ref_step == 16  # 512 training images, batch 64, 2 epochs
    assert all(torch.equal(ref[k], run[k]) for k in ref)


@pytest.mark.usefixtures("_fashion")
def test_fp32_nchw_run_resumes_in_bf16_channels_last(tmp_path, monkeypatch):
    from supernet.jobs.train import train_supernet

    cfg = _config(tmp_path, train__channels_last="false")
    cfg.device = "cpu"
    _train_until_first_checkpoint(monkeypatch, cfg, tmp_path / "run")
    first_step, _ = _weights(tmp_path / "run")
    later = _config(tmp_path, train__channels_last="true", train__amp="bf16")
    later.device = "auto"
    out = train_supernet(later, tmp_path / "run", resume=True)
    assert out["resumed"] and first_step == 8 and _weights(tmp_path / "run")[0] == 16


@pytest.fixture
def _fashion():
    from tests.conftest import FASHION

    if not FASHION.is_dir():
        pytest.skip("Fashion-MNIST not installed")
