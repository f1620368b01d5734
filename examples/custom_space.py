"""A new op and a new search space in one file, used with `--import`.

The op `dil2` is a dilated 3x3 conv + BN + ReLU (a block type of its own, `dilated_conv`); the space
`dilated-chain` is a small chain of `id` / `e3k3` / `dil2` layers for small images. Importing this file
registers both, through the public registries (`BLOCKS.register`, `register_op`, `register_space`):

    supernet --import examples/custom_space.py train --config C --run-dir runs/custom
    supernet --import examples/custom_space.py search --supernet runs/custom --run-dir runs/custom/search
    supernet --import examples/custom_space.py export --supernet runs/custom \\
        --arch runs/custom/search/result.json --out runs/custom/export

A checkpoint records its imports: without `--import` the search and export above stop with a one-line
error naming this file. Run the file itself to do all three on a slice of Fashion-MNIST (2 minutes on a loaded
2-core CPU):

    PYTHONPATH=src python examples/custom_space.py [RUN_DIR]
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from torch import nn

from supernet.ops.blocks import BLOCKS, BlockConfig
from supernet.ops.candidates import register_op
from supernet.space import LayerSpec, SearchSpace, register_space


class DilatedConv(nn.Sequential):
    """3x3 conv with dilation d (padding d keeps the size), BatchNorm, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int, dilation: int, bn_affine: bool = True) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, stride, dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(cout, affine=bn_affine),
            nn.ReLU(inplace=True),
        )


def _dilated_block(config: BlockConfig, bn_affine: bool) -> nn.Module:
    return DilatedConv(config["in"], config["out"], config.get("stride", 1), config["dilation"], bn_affine)


def _dilated_op(match: re.Match[str], layer: LayerSpec, identity: str) -> BlockConfig:
    """Op name `dil<d>` in a layer -> the block config of that layer's dilated conv."""
    return {
        "type": "dilated_conv",
        "in": layer.in_channels,
        "out": layer.out_channels,
        "stride": layer.stride,
        "dilation": int(match["d"]),
    }


BLOCKS.register("dilated_conv", _dilated_block)
register_op(r"^dil(?P<d>[1-4])$", _dilated_op)

CHOICES = ("id", "e3k3", "dil2")


@register_space(
    "dilated-chain",
    "example: id / MB e3k3 / dilated 3x3 conv chain (examples/custom_space.py)",
    {"fashion-mnist": {"resolution": 28, "input_channels": 1, "num_classes": 10}},
)
def dilated_chain(
    width: int = 16, depth: int = 4, resolution: int = 32, input_channels: int = 3, num_classes: int = 10
) -> SearchSpace:
    """Stem conv (stride 2), `depth` searchable layers (the middle one halves the size and doubles the
    width), 1x1 conv head, pool, linear."""
    stem = ({"type": "conv", "in": input_channels, "out": width, "kernel": 3, "stride": 2, "act": "relu"},)
    layers, cin = [], width
    for i in range(depth):
        stride = 2 if i == depth // 2 else 1
        cout = cin * stride
        layers.append(LayerSpec(cin, cout, stride, CHOICES, act="relu"))
        cin = cout
    head = (
        {"type": "conv", "in": cin, "out": 4 * width, "kernel": 1, "act": "relu"},
        {"type": "pool"},
        {"type": "linear", "in": 4 * width, "out": num_classes},
    )
    options = {
        "width": width,
        "depth": depth,
        "resolution": resolution,
        "input_channels": input_channels,
        "num_classes": num_classes,
    }
    return SearchSpace(
        "dilated-chain", (input_channels, resolution, resolution), num_classes, stem, tuple(layers), head, options
    )


TINY_RUN = [
    "data.train_limit=1000",
    "data.val_size=200",
    "space.name=dilated-chain",
    "space.preset=fashion-mnist",
    "train.epochs=1",
    "train.batch_size=50",
    "train.progress=false",
    "eval.recal_batches=2",
    "eval.val_batch_size=200",
    "search.options={population: 6, iterations: 2, topk: 3}",
]


def run_example(run_dir: Path) -> None:
    """train -> search -> export of `dilated-chain` through the command line, each with `--import` this file."""
    supernet = [sys.executable, "-m", "supernet.cli", "--import", str(Path(__file__).resolve())]
    overrides = [arg for item in TINY_RUN for arg in ("--set", item)]
    for args in (
        ["train", "--run-dir", str(run_dir / "train"), *overrides],
        ["search", "--supernet", str(run_dir / "train"), "--run-dir", str(run_dir / "search"), *overrides],
        [
            "export",
            "--supernet",
            str(run_dir / "train"),
            "--arch",
            str(run_dir / "search" / "result.json"),
            "--out",
            str(run_dir / "export"),
        ],
    ):
        print("$ supernet --import examples/custom_space.py " + " ".join(args), flush=True)
        subprocess.run([*supernet, *args], check=True)


if __name__ == "__main__":
    run_example(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="custom-space-")))
