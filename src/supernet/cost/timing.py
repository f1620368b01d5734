"""Time one module's forward pass on a backend: the median over repeats after warm-up.

`torch`: `torch.utils.benchmark.Timer` (inference mode, `threads` intra-op threads; blocked
auto-range, whose median over blocks resists the spikes of a shared machine).
`onnxruntime`: the module exported to ONNX in memory, run by an `InferenceSession` with
`threads` intra-op threads; the median of `repeats` blocks of timed `run` calls.

Clocks: `wall` (perf_counter) is the latency a user sees; `cpu` is the calling thread's CPU time
(`time.thread_time`), which equals the wall latency on an idle dedicated core but does not count
the time the scheduler gives to other processes. On a shared machine wall-clock medians of
sub-millisecond blocks jumped 5x between runs here, CPU-time medians stayed within a few percent;
`auto` picks `cpu` for one thread on the CPU (where all work runs in the calling thread) and
`wall` otherwise.
"""

from __future__ import annotations

import io
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from supernet.core.errors import ConfigError
from supernet.core.extras import require

BACKENDS = ("torch", "onnxruntime")
DEVICES = ("cpu", "cuda")
CLOCKS = ("auto", "wall", "cpu")
ONNX_OPSET = 17
"""The ONNX opset of exported models and of timed blocks (onnxruntime >= 1.12 runs it)."""


@dataclass(frozen=True)
class TimingSettings:
    """How every module is timed. `min_run_time` (seconds) per measurement, after `warmup` calls."""

    device: str = "cpu"
    backend: str = "torch"
    batch_size: int = 1
    threads: int = 1
    warmup: int = 10
    min_run_time: float = 0.2
    repeats: int = 7
    clock: str = "auto"

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ConfigError(f"--clock must be one of {', '.join(CLOCKS)}, got {self.clock!r}")
        if self.clock == "auto":
            object.__setattr__(self, "clock", "cpu" if self.device == "cpu" and self.threads == 1 else "wall")
        if self.clock == "cpu" and (self.device != "cpu" or self.threads != 1):
            raise ConfigError("--clock cpu times the calling thread: it needs --device cpu and --threads 1")
        if self.device not in DEVICES:
            raise ConfigError(f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        for name in ("batch_size", "threads", "repeats"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(self, name)!r}")
        if self.warmup < 0 or not self.min_run_time > 0:
            raise ConfigError("warm-up must be >= 0 calls and the run time per measurement > 0 seconds")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device is available here (use --device cpu)")
        if self.device == "cuda" and self.backend == "onnxruntime":
            raise ConfigError("--backend onnxruntime times on the CPU here; use --device cpu")
        if self.backend == "onnxruntime":  # both, before anything is timed or written
            require("onnx", "--backend onnxruntime")
            require("onnxruntime", "--backend onnxruntime")


def time_module(module: nn.Module, input_shape: tuple[int, ...], settings: TimingSettings) -> float:
    """Median latency in milliseconds of `module(x)` for a batch of `settings.batch_size` inputs."""
    module = module.eval()
    x = torch.randn(settings.batch_size, *input_shape)
    if settings.backend == "onnxruntime":
        return _time_onnxruntime(module, x, settings)
    return _time_torch(module, x, settings)


def _time_torch(module: nn.Module, x: torch.Tensor, settings: TimingSettings) -> float:
    from torch.utils.benchmark import Timer

    device = torch.device(settings.device)
    module, x = module.to(device), x.to(device)
    threads = torch.get_num_threads()
    try:
        with torch.inference_mode():
            for _ in range(settings.warmup):
                module(x)
            timer = Timer(
                "module(x)", globals={"module": module, "x": x}, num_threads=settings.threads, timer=_clock(settings)
            )
            measurement = timer.blocked_autorange(min_run_time=settings.min_run_time)
    finally:
        torch.set_num_threads(threads)
    return float(measurement.median) * 1000.0


def onnx_bytes(module: nn.Module, x: torch.Tensor, dynamic_batch: bool = False) -> bytes:
    """`module` as an ONNX model (opset `ONNX_OPSET`), input `input`, output `output`."""
    buffer = io.BytesIO()
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings():  # the TorchScript exporter: ~100x faster per block than dynamo=True
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module.eval(),
            (x,),
            buffer,
            input_names=["input"],
            output_names=["output"],
            opset_version=ONNX_OPSET,
            dynamic_axes=axes,
            dynamo=False,
        )
    return buffer.getvalue()


def onnx_session(model: bytes, threads: int):
    """An onnxruntime CPU session with `threads` intra-op threads and one inter-op thread."""
    ort = require("onnxruntime", "onnxruntime sessions")

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _time_onnxruntime(module: nn.Module, x: torch.Tensor, settings: TimingSettings) -> float:
    session = onnx_session(onnx_bytes(module, x), settings.threads)
    feed = {"input": x.numpy()}
    return _median_ms(lambda: session.run(None, feed), settings)


def _median_ms(call: Callable[[], object], settings: TimingSettings) -> float:
    """Warm up, pick a block size that takes ~min_run_time / repeats, and take the median block."""
    clock = _clock(settings)
    for _ in range(settings.warmup):
        call()
    start = clock()
    call()
    once = max(clock() - start, 1e-6)
    number = max(1, int(settings.min_run_time / settings.repeats / once))
    blocks = []
    for _ in range(settings.repeats):
        start = clock()
        for _ in range(number):
            call()
        blocks.append((clock() - start) / number)
    return statistics.median(blocks) * 1000.0


def _clock(settings: TimingSettings) -> Callable[[], float]:
    return time.thread_time if settings.clock == "cpu" else time.perf_counter
