"""Where and how tensors are computed: the device, mixed precision and memory format of a run.

`resolve_device` turns the user's `device` setting (`auto`, `cpu`, `cuda`, `cuda:N`) into a
`torch.device`; `Runtime` carries it with the autocast dtype and the memory format, and moves
models and batches. Every verb builds one `Runtime` from its config (`runtime_for`) and hands it to
the training loop, the evaluators and BatchNorm recalibration; nothing else picks a device.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from supernet.core.distributed_env import env_local_rank, env_world_size
from supernet.core.errors import ConfigError

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
AMP_DTYPES: dict[str, torch.dtype | None] = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}
CHANNELS_LAST = ("auto", "true", "false")
CPU = torch.device("cpu")
DEVICE_HELP = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N"


def resolve_device(
    text: str | None,
    cuda_available: Callable[[], bool] = torch.cuda.is_available,
    cuda_count: Callable[[], int] = torch.cuda.device_count,
) -> torch.device:
    """The device a `device` setting names; under torchrun `auto`/`cuda` mean cuda:LOCAL_RANK.

    Bad or unavailable values raise a one-line `ConfigError` naming the value and what is accepted.
    """
    value = "auto" if text is None else str(text).strip().lower()
    if not DEVICE_PATTERN.fullmatch(value):
        raise ConfigError(f"device {text!r} is not one of: {DEVICE_HELP}")
    if value == "cpu" or (value == "auto" and not cuda_available()):
        return torch.device("cpu")
    if not cuda_available():
        raise ConfigError(
            f"device {value!r} asked for, but this torch sees no CUDA device "
            f"(torch {torch.__version__}); use --device cpu or auto"
        )
    if ":" in value:
        if env_world_size() > 1:
            raise ConfigError(
                f"device {value!r} under torchrun: give cuda or auto, each rank then takes cuda:LOCAL_RANK"
            )
        index = int(value.split(":")[1])
    else:
        index = env_local_rank() if env_world_size() > 1 else 0
    if index >= cuda_count():
        raise ConfigError(f"device cuda:{index} does not exist; this machine has {cuda_count()} CUDA device(s)")
    return torch.device("cuda", index)


def parse_amp(value: str | bool, device: torch.device, field: str = "amp") -> str:
    """`train.amp` checked against the device: fp16 autocast is refused on CPUs (bf16 is the CPU's
    half type; fp16 there is slow and its gradient scaler buys nothing). YAML reads `off` as false."""
    if value is False:
        value = "off"
    if value not in AMP_DTYPES:
        raise ConfigError(f"{field} {value!r} is not one of: {', '.join(AMP_DTYPES)}")
    if value == "fp16" and device.type != "cuda":
        raise ConfigError(f"{field}=fp16 needs a CUDA device (this run is on {device}); use bf16 on CPUs, or off")
    return value


def parse_channels_last(value: str | bool, field: str = "channels_last") -> str:
    text = str(value).lower()
    if text not in CHANNELS_LAST:
        raise ConfigError(f"{field} {value!r} is not one of: {', '.join(CHANNELS_LAST)}")
    return text


@dataclass(frozen=True)
class Runtime:
    """Device, autocast dtype (`amp`: off | bf16 | fp16) and memory format of a run.

    `channels_last` applies to 4-D tensors only (conv weights, image batches); models and batches
    get the same format so convolutions do not convert on every call.
    """

    device: torch.device = CPU
    amp: str = "off"
    channels_last: bool = False

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self) -> AbstractContextManager[Any]:
        dtype = AMP_DTYPES[self.amp]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled for fp16 only (bf16 has fp32's exponent range)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")

    def prepare(self, model: nn.Module) -> nn.Module:
        """Move `model` (in place: parameters keep their identity) to the device and memory format."""
        return model.to(device=self.device, memory_format=self.memory_format)

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        """An input batch on the device in the model's memory format (pinned, asynchronous copy to CUDA)."""
        fmt = self.memory_format if x.dim() == 4 else torch.preserve_format
        return self._pinned(x).to(self.device, memory_format=fmt, non_blocking=self.is_cuda)

    def labels(self, y: torch.Tensor) -> torch.Tensor:
        return self._pinned(y).to(self.device, non_blocking=self.is_cuda)

    def _pinned(self, t: torch.Tensor) -> torch.Tensor:
        """`t` in page-locked memory when it is copied to CUDA (a DataLoader with pin_memory did it already)."""
        if self.is_cuda and t.device.type == "cpu" and not t.is_pinned():
            return t.pin_memory()
        return t


def runtime_for(
    device: str | None,
    amp: str = "off",
    channels_last: str | bool = "auto",
    deterministic: bool = False,
    section: str = "train",
) -> Runtime:
    """The Runtime of a verb from its settings (config `device`, a section's `amp`/`channels_last`).

    `channels_last: auto` is on for every device: measured on this project's CPU (benchmarks/
    channels_last.py) it is faster for the spaces there, and on GPUs it is what tensor cores want.
    cuDNN picks its fastest kernels (`benchmark`) unless `deterministic` is asked for.
    """
    resolved = resolve_device(device)
    layout = parse_channels_last(channels_last, f"{section}.channels_last")
    amp = parse_amp(amp, resolved, f"{section}.amp")
    set_determinism(deterministic)
    return Runtime(resolved, amp, layout != "false")


def set_determinism(deterministic: bool) -> None:
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
