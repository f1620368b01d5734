"""The device setting: resolution (with CUDA mocked where the logic needs it), bad values, Runtime moves."""

import pytest
import torch
from torch import nn

from supernet.core.device import Runtime, parse_amp, parse_channels_last, resolve_device, runtime_for
from supernet.core.errors import ConfigError
from tests.conftest import run_main


def _cuda(count):
    return {"cuda_available": lambda: count > 0, "cuda_count": lambda: count}


@pytest.fixture(autouse=True)
def _single_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    "text, count, expected",
    [
        ("auto", 0, "cpu"),
        (None, 0, "cpu"),
        ("cpu", 2, "cpu"),
        ("auto", 2, "cuda:0"),
        ("cuda", 1, "cuda:0"),
        ("cuda:1", 2, "cuda:1"),
        (" CUDA:1 ", 2, "cuda:1"),
    ],
)
def test_resolve_device(text, count, expected):
    assert resolve_device(text, **_cuda(count)) == torch.device(expected)


@pytest.mark.parametrize(
    "text, count, words",
    [
        ("gpu", 1, "not one of"),
        ("cuda:x", 1, "not one of"),
        ("", 1, "not one of"),
        ("cpu:0", 1, "not one of"),
        ("cuda", 0, "no CUDA device"),
        ("cuda:0", 0, "no CUDA device"),
        ("cuda:2", 2, "has 2 CUDA device"),
    ],
)
def test_bad_or_unavailable_devices_are_one_line_errors(text, count, words):
    with pytest.raises(ConfigError, match=words) as err:
        resolve_device(text, **_cuda(count))
    assert "\n" not in str(err.value)


def test_under_torchrun_each_rank_takes_its_local_gpu(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device("auto", **_cuda(4)) == torch.device("cuda", 3)
    assert resolve_device("cuda", **_cuda(4)) == torch.device("cuda", 3)
    assert resolve_device("cpu", **_cuda(4)) == torch.device("cpu")
    with pytest.raises(ConfigError, match="LOCAL_RANK"):
        resolve_device("cuda:0", **_cuda(4))


def test_amp_and_channels_last_values():
    assert parse_amp("bf16", torch.device("cpu")) == "bf16"
    assert parse_amp("fp16", torch.device("cuda", 0)) == "fp16"
    with pytest.raises(ConfigError, match="train.amp=fp16 needs a CUDA device"):
        parse_amp("fp16", torch.device("cpu"), "train.amp")
    with pytest.raises(ConfigError, match="not one of: off, bf16, fp16"):
        parse_amp("fp8", torch.device("cpu"))
    assert parse_channels_last(True) == "true" and parse_channels_last("AUTO") == "auto"
    with pytest.raises(ConfigError, match="standalone.channels_last"):
        runtime_for("cpu", channels_last="yes", section="standalone")
    assert runtime_for("cpu").channels_last  # auto: on


def test_runtime_moves_model_and_batches_to_one_memory_format():
    rt = Runtime(torch.device("cpu"), "off", channels_last=True)
    net = rt.prepare(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(144, 2)))
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = rt.batch(torch.randn(2, 3, 8, 8))
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    assert rt.batch(torch.randn(2, 5)).shape == (2, 5)
    plain = Runtime(channels_last=False).batch(x)
    assert plain.is_contiguous()


def test_runtime_moves_to_the_meta_device_without_pinning(monkeypatch):
    pinned = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: pinned.append(1) or self)
    rt = Runtime(torch.device("meta"), "off", channels_last=True)
    x, y = rt.batch(torch.randn(2, 3, 4, 4)), rt.labels(torch.zeros(2, dtype=torch.long))
    assert x.device.type == "meta" and y.device.type == "meta" and not pinned  # pinning is for CUDA only
    assert rt.prepare(nn.Conv2d(3, 2, 1)).weight.device.type == "meta"


def test_bf16_autocast_runs_the_convolutions_in_bf16():
    rt = Runtime(torch.device("cpu"), "bf16", channels_last=True)
    conv = rt.prepare(nn.Conv2d(3, 4, 3))
    with rt.autocast():
        out = conv(rt.batch(torch.randn(2, 3, 8, 8)))
    assert out.dtype == torch.bfloat16
    assert not rt.grad_scaler().is_enabled() and Runtime(amp="fp16").grad_scaler().is_enabled()


@pytest.mark.parametrize("device, words", [("gpu", "device 'gpu' is not one of"), ("cuda:0", "no CUDA device")])
def test_cli_refuses_a_bad_device_in_one_line(tmp_path, device, words):
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for verb in (
        ["train", "--run-dir", str(tmp_path / "r")],
        ["similarity", "--supernet", str(tmp_path / "none"), "--layer", "0", "--run-dir", str(tmp_path / "s")],
    ):
        run = run_main(*verb, "--device", device)
        assert run.returncode == 2 and run.stderr.count("\n") == 1 and words in run.stderr, run.stderr
    assert not (tmp_path / "r" / "config.yaml").exists()


def test_batches_for_cuda_are_pinned_and_copied_without_blocking(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.Tensor, "is_pinned", lambda self: False)
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: calls.append("pin") or self)
    monkeypatch.setattr(torch.Tensor, "to", lambda self, *a, **kw: calls.append((a, kw)) or self)
    rt = Runtime(torch.device("cuda", 0), "off", channels_last=True)
    rt.batch(torch.zeros(2, 3, 4, 4))
    rt.labels(torch.zeros(2, dtype=torch.long))
    assert calls == [
        "pin",
        ((rt.device,), {"memory_format": torch.channels_last, "non_blocking": True}),
        "pin",
        ((rt.device,), {"non_blocking": True}),
    ]


def test_yaml_off_means_amp_off():
    from supernet.config.schema import load_config
    from supernet.runs.build import runtime_of

    cfg = load_config(None, ["train.amp=off", "standalone.amp=bf16"])
    cfg.device = "cpu"
    assert runtime_of(cfg).amp == "off" and runtime_of(cfg, cfg.standalone).amp == "bf16"
    with pytest.raises(ConfigError, match="train.amp True is not one of"):
        runtime_of(load_config(None, ["train.amp=true"]))
