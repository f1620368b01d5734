"""The gradient all-reduce works over flattened buckets: few calls, every gradient averaged exactly."""

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from supernet.train.distributed import allreduce_grads, buckets

WORLD = 2


def test_buckets_respect_size_dtype_and_order():
    ts = [
        torch.zeros(256),
        torch.zeros(256),
        torch.zeros(1024),
        torch.zeros(10, dtype=torch.float64),
        torch.zeros(4, dtype=torch.float64),
    ]
    groups = buckets(ts, bucket_mb=2048 / 2**20)  # 2 KiB: two 1 KiB tensors fit, the 4 KiB one is alone
    assert [[t.numel() for t in g] for g in groups] == [[256, 256], [1024], [10, 4]]
    assert [t for g in groups for t in g] == ts
    assert len(buckets(ts)) == 2  # 25 MB: one bucket per dtype


def _worker(rank, init_file, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        calls = []
        original = dist.all_reduce

        def counting(tensor, *args, **kwargs):
            calls.append(tensor.numel())
            return original(tensor, *args, **kwargs)

        dist.all_reduce = counting
        shapes = [(8, 4, 3, 3), (8,), (16, 8, 1, 1), (16,), (10, 16)]
        params = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
        for i, p in enumerate(params):
            p.grad = torch.full(s if (s := p.shape) else (), float(rank * 10 + i))
        params[0].grad = params[0].grad.contiguous(memory_format=torch.channels_last)
        allreduce_grads(params, WORLD, bucket_mb=300 * 4 / 2**20)  # 300 floats per bucket
        dist.all_reduce = original
        out[rank] = ([p.grad.clone() for p in params], calls)
    finally:
        dist.destroy_process_group()


def test_allreduce_over_buckets_averages_every_gradient(tmp_path):
    out = mp.Manager().dict()
    mp.spawn(_worker, args=(str(tmp_path / "init"), out), nprocs=WORLD)
    grads, calls = out[0]
    # 288 + 8 | 128 + 16 | 160 floats; one more call is the ranks' parameter-count check
    assert calls == [4, 296, 144, 160]
    for i, g in enumerate(grads):
        assert torch.equal(g, torch.full_like(g, (0 + 10 + 2 * i) / 2))
        assert torch.equal(g, out[1][0][i])
