"""The Python API in one file: your own candidate modules and data; train, search under a MACs budget, export, reload.

PYTHONPATH=src python examples/quickstart.py      # ~5 s on one CPU core; the model goes to a temporary folder"""

import tempfile
from functools import partial

import torch
from torch import nn

import supernet


class Conv(nn.Sequential):  # a candidate: any nn.Module subclass built as Cls(in_channels, out_channels, stride)
    def __init__(self, cin: int, cout: int, stride: int, kernel: int = 3) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def lit_quadrant(n: int, seed: int) -> torch.utils.data.Dataset:  # toy data: which quadrant of a 16x16 image is lit
    y = torch.randint(0, 4, (n,), generator=torch.Generator().manual_seed(seed))
    x = nn.functional.one_hot(y, 4).float().view(n, 1, 2, 2).repeat_interleave(8, 2).repeat_interleave(8, 3)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    return torch.utils.data.TensorDataset(x + 0.5 * noise, y)


torch.manual_seed(0)
ops = [partial(Conv, kernel=3), partial(Conv, kernel=5), "id"]  # op names conv_kernel3, conv_kernel5; "id": skip
layers = [supernet.LayerChoice(ops, 8), supernet.LayerChoice(ops[:2], 16, stride=2)] + [supernet.LayerChoice(ops)] * 2
net = supernet.build_supernet(supernet.module_space(layers, input_shape=(1, 16, 16), num_classes=4))
train_set, val_set = lit_quadrant(512, seed=1), lit_quadrant(256, seed=2)
fit = supernet.fit(net, train_set, epochs=3, batch_size=32, lr=0.1)
print(f"{net.space.size} archs; trained {fit.global_step} steps, path accuracy {fit.epochs[-1]['acc_mean']:.2f}")
log = []  # a callback sees every evaluated arch and its metrics
budget = dict(max_macs="700K", population=8, iterations=3, callbacks=[lambda arch, metrics: log.append(metrics)])
result = supernet.search_arch(net, val_set, train_data=train_set, **budget)
print(f"{len(log)} evaluated; best under 700K MACs: {result.best} {result.best_metrics}")
with tempfile.TemporaryDirectory(prefix="quickstart-") as out:  # removed at the end: give a folder to keep it
    model = supernet.export(net, result.best, out).cpu()  # from where fit trained (a GPU if any) to the CPU
    x = val_set.tensors[0][:8]
    print(f"exported to {out}; reloaded model agrees: {torch.equal(model(x), supernet.load_exported(out)(x))}")
