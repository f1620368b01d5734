"""Data-parallel training (2 CPU processes, gloo) equals single-process training over the global batch.

BatchNorm uses per-rank batch statistics (as DDP does), so the single-process reference is not one
forward over the global batch: it runs the two per-rank halves of each global batch separately
(each with its own BN statistics) and averages their losses, i.e. the gradients of the two shards.
Parameters must match within float tolerance (the all-reduce sums in another order); the ranks'
parameters must be bit-identical. The nets run in float64: a tiny random-label net with batch-8 BN
over 1x1 maps turns float32 rounding differences (1e-7) into 1e-3 within a few steps. BN running statistics are
not compared (each rank's see only its shard). The run is interrupted after one epoch and resumed by both ranks
from rank 0's checkpoint.
"""

import random

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from train_helpers import make_trainer, tiny_space

from supernet.model.supernet import Supernet
from supernet.train.distributed import Distributed
from supernet.train.loop import TrainHook
from supernet.train.sampler import FairSampler, UniformSampler

WORLD, BATCH, STEPS, EPOCHS, LR = 2, 8, 2, 2, 0.005


def _sampler(name, space):
    return FairSampler(space) if name == "fair" else UniformSampler(space)


class _StopAt(TrainHook):
    def __init__(self, epoch):
        self.epoch = epoch

    def epoch_start(self, trainer, epoch):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def _f64(net):
    return lambda x, arch: net(x.double(), arch)


def _worker(rank, init_file, run_dir, out_dir, sampler_name):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        group = Distributed()
        space = tiny_space()
        torch.manual_seed(rank)  # different initialisations: the broadcast from rank 0 must fix that
        net = Supernet(space).double()
        group.broadcast_module(net)
        first = make_trainer(
            net,
            forward=_f64(net),
            run_dir=run_dir,
            sampler=_sampler(sampler_name, space),
            steps=STEPS,
            epochs=EPOCHS,
            batch=BATCH,
            lr=LR,
            dist=group,
            rank=rank,
            world_size=WORLD,
            hooks=[_StopAt(1)],
        )
        try:
            first.fit()  # one epoch, checkpoint by rank 0, then "killed"
        except KeyboardInterrupt:
            pass
        net = Supernet(space).double()  # as a fresh process would start; resume loads rank 0's checkpoint
        trainer = make_trainer(
            net,
            forward=_f64(net),
            run_dir=run_dir,
            sampler=_sampler(sampler_name, space),
            steps=STEPS,
            epochs=EPOCHS,
            batch=BATCH,
            lr=LR,
            dist=group,
            rank=rank,
            world_size=WORLD,
        )
        assert trainer.resume()
        trainer.fit()
        torch.save({k: v.detach().clone() for k, v in net.named_parameters()}, f"{out_dir}/rank{rank}.pt")
        # One more step: the candidates off its path must stay bit-identical (momentum and weight
        # decay are on), which DDP's find_unused_parameters=True would break with zero gradients.
        arch = space.sample(random.Random(99))
        before = {k: v.detach().clone() for k, v in net.named_parameters()}
        x, y = next(trainer.loader.iter_epoch(5))
        trainer.optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x.double(), arch), y).backward()
        group.sync_grads(net)
        trainer.optimizer.step()
        off_path = [k for k in before if k.startswith("choices.") and k.split(".")[2] != arch[int(k.split(".")[1])]]
        on_path = [k for k in before if k not in off_path]
        torch.save(
            {
                "unchanged_off_path": all(torch.equal(before[k], net.get_parameter(k)) for k in off_path),
                "changed_on_path": sum(not torch.equal(before[k], net.get_parameter(k)) for k in on_path),
                "momentum_off_path": sum(1 for k in off_path if net.get_parameter(k) in trainer.optimizer.state),
            },
            f"{out_dir}/step{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def _reference(run_dir, sampler_name):
    """One process, global batch = both shards, BN statistics per shard, mean of the shard losses."""
    torch.manual_seed(0)
    space = tiny_space()
    net = Supernet(space).double()

    def forward(x, arch):
        return torch.cat([net(half.double(), arch) for half in x.chunk(WORLD)])

    make_trainer(
        net,
        run_dir,
        sampler=_sampler(sampler_name, space),
        steps=STEPS,
        epochs=EPOCHS,
        batch=BATCH * WORLD,
        lr=LR,
        forward=forward,
    ).fit()
    return {k: v.detach() for k, v in net.named_parameters()}


@pytest.mark.parametrize("sampler_name", ["fair"])
def test_two_ranks_equal_single_process_and_resume(tmp_path, sampler_name):
    mp.start_processes(
        _worker,
        args=(str(tmp_path / "init"), str(tmp_path / "run"), str(tmp_path), sampler_name),
        nprocs=WORLD,
        join=True,
        start_method="spawn",
    )
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD))
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    ref = _reference(tmp_path / "ref", sampler_name)
    assert r0.keys() == ref.keys()
    for k in ref:
        torch.testing.assert_close(r0[k], ref[k], rtol=1e-9, atol=1e-10, msg=k)
    torch.manual_seed(0)
    init = Supernet(tiny_space()).double()
    moved = [k for k in ref if not torch.equal(ref[k], init.get_parameter(k))]
    assert moved  # training did something
    for r in range(WORLD):
        step = torch.load(tmp_path / f"step{r}.pt")
        assert step["unchanged_off_path"] and step["changed_on_path"] > 0 and step["momentum_off_path"] > 0
