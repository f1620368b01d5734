"""Shared fixtures: a tiny CPU-sized scarlet-s1 space and a tiny training config."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

TINY_SPACE = dict(
    preset="fashion-mnist", width=0.25, head_channels=32, layers_per_stage=(1, 2, 1, 2, 1, 1), stem_stride=2
)
FASHION = Path("/usr/share/datasets/fashion-mnist")
REPO = Path(__file__).resolve().parents[1]


def shared_path(*parts: str) -> Path:
    """A path under the project's shared folder (papers, data sets): `../shared` beside the checkout, or,
    for a git worktree two levels below it (`wt/<name>`), beside the main checkout. Tests that need it skip
    when it is absent."""
    candidates = (REPO.parent / "shared", REPO.parents[1] / "shared")
    base = next((c for c in candidates if c.is_dir()), candidates[0])
    return base.joinpath(*parts)


@pytest.fixture
def tiny_space():
    from supernet.space import create_space

    return create_space("scarlet-s1", **TINY_SPACE)


# each strategy's own options (`search.options`) at a seconds-long size
TINY_SEARCH = {
    "evolution": {"population": 6, "iterations": 2, "topk": 3},
    "random": {"num_samples": 6, "topk": 3},
    "nsga2": {"population": 6, "generations": 2, "topk": 3},
    "ces": {"population": 6, "iterations": 2, "topk": 3},
}


def tiny_overrides(**extra: object) -> list[str]:
    """Config overrides for a seconds-long supernet run on a slice of Fashion-MNIST. `search__<option>=v`
    sets an option of the chosen strategy (`search.options.<option>`)."""
    base = {
        "data.train_limit": 640,
        "data.val_size": 128,
        "space.options": "{width: 0.25, head_channels: 32, layers_per_stage: [1,2,1,2,1,1], stem_stride: 2}",
        "train.epochs": 2,
        "train.batch_size": 64,
        "train.progress": "false",
        "eval.recal_batches": 2,
        "eval.recal_batch_size": 64,
        "eval.val_batch_size": 128,
        "standalone.epochs": 1,
        "standalone.batch_size": 64,
        "standalone.progress": "false",
    }
    strategy = str(extra.get("search__strategy", "evolution"))
    options = dict(TINY_SEARCH.get(strategy, {}))
    for key in [k for k in extra if k.startswith("search__") and k[8:] in OPTION_NAMES]:
        options[key[8:]] = extra.pop(key)
    base["search.options"] = "{" + ", ".join(f"{k}: {v}" for k, v in options.items()) + "}"
    base.update({k.replace("__", "."): v for k, v in extra.items()})
    return [f"{k}={v}" for k, v in base.items()]


def search_options(strategy: str = "evolution", population: int = 8, iterations: int = 2, samples: int = 16) -> str:
    """The override `search.options={...}` of `strategy` at a small size: its population and generations
    (nsga2 calls them `generations`), or random search's number of samples."""
    if strategy == "random":
        return f"search.options={{num_samples: {samples}}}"
    steps = "generations" if strategy == "nsga2" else "iterations"
    return f"search.options={{population: {population}, {steps}: {iterations}}}"


OPTION_NAMES = {"population", "iterations", "generations", "topk", "num_samples", "mutation_prob"}


def cli_env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "supernet.cli", *args]


def set_args(overrides: Iterable[str]) -> list[str]:
    """`--set` arguments for config overrides such as `tiny_overrides()`."""
    return [arg for item in overrides for arg in ("--set", item)]


def run_cli(*args: str, code: int | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The CLI in a child process, as a user runs it (stdout and stderr as text); with `code`, the exit
    code must be that (the failure shows the end of stderr)."""
    r = subprocess.run(cli(*args), env=cli_env(), capture_output=True, text=True, timeout=timeout, check=False)
    if code is not None:
        assert r.returncode == code, r.stderr[-3000:]
    return r


def run_main(*args: str, code: int | None = None) -> subprocess.CompletedProcess:
    """The CLI in this process (a traceback fails the test with the exception itself); with `code`, the exit
    code must be that. A refusal tested here costs no interpreter and torch start-up (~3-7 s a child process
    on two busy cores); the CLI's log lines reach the captured stderr too. `run_cli` keeps what only a child
    process shows (signals, timeouts, the interpreter's start-up, fresh imports)."""
    from supernet.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            returned = main(list(args))
        except SystemExit as e:
            returned = e.code
    if code is not None:
        assert returned == code, err.getvalue()[-3000:]
    return subprocess.CompletedProcess(args, returned, out.getvalue(), err.getvalue())


def rebuilt_output_shape(config: dict) -> str:
    """The output shape of a stand-alone model rebuilt from its JSON config in a fresh process (nothing but
    the config and the block registry), for a batch of two."""
    code = (
        "import json, sys; from supernet.model.standalone import StandaloneNet; "
        "m = StandaloneNet(json.loads(sys.stdin.read())); print(tuple(m(m.example_input(2)).shape))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit code 2 and one line on stderr naming each of `needles`, never a traceback."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], result.stderr


needs_fashion = pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST not installed")


def randomize_batchnorm(net):
    """Non-trivial BN statistics and affine values, so that a wrong weight copy shows up; eval mode."""
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            if m.affine:
                m.weight.data.uniform_(0.5, 1.5, generator=g)
                m.bias.data.uniform_(-0.5, 0.5, generator=g)
    return net.eval()
