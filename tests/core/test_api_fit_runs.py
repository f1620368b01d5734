"""`supernet.fit` and its run directory (issue 29.5): the CLI's checks (an existing run is never replaced, a
resume must keep the settings), and a diverged fit puts the last good weights back and says what was kept."""

import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

import supernet
from supernet.core.errors import CheckpointError
from supernet.train.loop import TrainingDiverged


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))


class Spoiled(Dataset):
    """Clean samples, then (from sample `after` on) images of infinities: the loss becomes NaN."""

    def __init__(self, clean, after):
        self.clean, self.after, self.served = clean, after, 0

    def __len__(self):
        return len(self.clean)

    def __getitem__(self, i):
        self.served += 1
        x, y = self.clean[i]
        return (x if self.served <= self.after else torch.full_like(x, float("inf"))), y


def test_fit_never_replaces_a_run_and_resumes_only_with_its_settings(tiny_space, tmp_path):
    net = supernet.build_supernet(tiny_space)
    run = tmp_path / "run"
    supernet.fit(net, _data(), epochs=1, batch_size=32, run_dir=run)
    log = (run / "metrics.jsonl").read_bytes()
    last = (run / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(CheckpointError, match="already holds a training run; pass resume=True") as info:
        supernet.fit(net, _data(), epochs=1, batch_size=32, run_dir=run)
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match=r"train.lr: 0.05 -> 0.1") as info:
        supernet.fit(net, _data(), epochs=1, batch_size=32, lr=0.1, run_dir=run, resume=True)
    assert "choose another run_dir" in str(info.value)
    assert (run / "metrics.jsonl").read_bytes() == log and (run / "checkpoints" / "last.pt").read_bytes() == last
    assert not (run / "checkpoints" / "prev.pt").exists()
    again = supernet.fit(net, _data(), epochs=1, batch_size=32, run_dir=run, resume=True, progress=True)
    assert again.global_step == 2 and again.epochs == []  # the same settings (progress is not one): resumed, done


def test_a_diverged_fit_restores_its_last_checkpoint_in_memory(tiny_space):
    torch.manual_seed(0)
    net = supernet.build_supernet(tiny_space)
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(TrainingDiverged) as info:  # the second epoch diverges: its first epoch's end is kept
        supernet.fit(net, Spoiled(_data(), after=64), epochs=2, batch_size=32)
    message = str(info.value)
    assert "supernet-train-" not in message and "nothing was kept on disk" in message, message
    assert "last checkpoint again (step 2)" in message
    state = net.state_dict()
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert any(not torch.equal(state[k], initial[k]) for k in initial)  # trained for an epoch, not reset


def test_a_fit_diverging_at_once_gives_back_the_net_it_was_given(tiny_space):
    torch.manual_seed(0)
    net = supernet.build_supernet(tiny_space)
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(TrainingDiverged, match="weights it had when fit\\(\\) started again; nothing was kept"):
        supernet.fit(net, Spoiled(_data(), after=0), epochs=1, batch_size=32)
    assert all(torch.equal(v, initial[k]) for k, v in net.state_dict().items())
