"""Latency look-up tables (PAD-NAS section 3): each (layer, op) timed on the input shape that layer
sees, plus the fixed stem and head; an arch's predicted latency is their sum.

`build_latency_table` measures a space on one device/backend; `calibrate_latency_table` measures
a few whole stand-alone models and folds a robust linear fit (measured = scale x predicted +
offset) into the table, which stays additive; `validate_latency_table` measures whole models of
other sampled archs and stores MAPE and Kendall tau of predicted vs measured in the table;
`latency_metric` plugs a table into a `CostTable` as `latency_ms`.
Identities that keep the shape are dropped from stand-alone models, so they cost 0.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
import platform
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from supernet.core.errors import ConfigError, SpaceError
from supernet.core.extras import require
from supernet.core.io import atomic_write_text, unique_keys
from supernet.cost.timing import TimingSettings, time_module
from supernet.ops.blocks import build_block
from supernet.ops.candidates import exported_config
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace

FORMAT = "supernet.latency-table/1"
METRIC = "latency_ms"
CALIBRATION_ARCHS = 10
"""Default number of whole models `--calibrate` measures."""
MAX_MS = 1e6
"""The largest latency (and offset magnitude) a table entry may hold: 1,000 s. Larger values are not
timings of one block; they would only make sums overflow and the window's dynamic program explode."""
MAX_FILE_BYTES = 16 << 20
"""A latency table is a few KB (calibration and validation rows included); larger files are refused unread."""
WINDOW_BINS = 1 << 18
"""Grid cells of the window's dynamic program over the achievable range (`reachable_values`)."""
LATENCY_NEUTRAL = {"dropout": ("p",)}
"""Block fields that do not change inference latency, ignored when a table's stem and head are compared."""

ArchTimer = Callable[[Arch], float]
"""Measures an arch's whole stand-alone model: milliseconds."""


@dataclass
class LatencyTable:
    """Milliseconds per (layer, op) plus the fixed part; `meta` says where and how they were measured."""

    space: str
    identity: str
    input_shape: tuple[int, ...]
    layer_shapes: list[dict[str, Any]]  # per layer: in/out channels, stride, input shape
    stem_ms: float
    head_ms: float
    layers: list[dict[str, float]]  # per layer: op -> ms
    meta: dict[str, Any] = field(default_factory=dict)
    # the calibration's offset (`calibrate_latency_table`); tables written before it load with 0
    offset_ms: float = 0.0
    # the block configs of the stem and head it was measured with; tables written before them load
    # with None and are checked by `meta["space_options"]` instead (`check_fits`)
    stem: list[dict[str, Any]] | None = None
    head: list[dict[str, Any]] | None = None

    @property
    def fixed_ms(self) -> float:
        """Everything an arch pays whatever its choices: stem, head and the calibration offset."""
        return self.stem_ms + self.head_ms + self.offset_ms

    def scaled(self, scale: float, offset: float) -> LatencyTable:
        """The table whose predictions are `scale * predict(arch) + offset` for every arch: each
        entry (stem and head too) times `scale`, the offset added to `offset_ms`."""
        return replace(
            self,
            stem_ms=self.stem_ms * scale,
            head_ms=self.head_ms * scale,
            layers=[{op: ms * scale for op, ms in row.items()} for row in self.layers],
            meta=copy.deepcopy(self.meta),
            offset_ms=self.offset_ms * scale + offset,
        )

    @property
    def cheapest_ms(self) -> float:
        """The prediction of the cheapest arch the table prices (of its full space: a pruning's is higher)."""
        return self.fixed_ms + sum(min(row.values(), default=0.0) for row in self.layers)

    def predict(self, arch: Arch) -> float:
        return self.fixed_ms + sum(row[op] for row, op in zip(self.layers, arch.ops, strict=True))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self), "input_shape": list(self.input_shape)}

    def save(self, path: Path) -> None:
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read a table written by `save` (untrusted: every value is type- and range-checked)."""
        try:
            size = Path(path).stat().st_size
            if size > MAX_FILE_BYTES:
                raise ConfigError(
                    f"latency table {path} is {size} bytes, larger than the {MAX_FILE_BYTES >> 20} MiB a table "
                    f"may be; is it the right file?"
                )
            data = json.loads(
                Path(path).read_text(), object_pairs_hook=unique_keys("key {key!r} is given twice", cut=40)
            )
        except (OSError, ValueError, UnicodeDecodeError, RecursionError) as e:
            raise ConfigError(f"cannot read latency table {path}: {type(e).__name__}: {e}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ConfigError(f"{path} is not a latency table: format {got!r}, expected {FORMAT!r}")
        try:
            layers = data["layers"]
            if not isinstance(layers, list) or not all(isinstance(row, dict) and row for row in layers):
                raise ValueError("'layers' must be a list of non-empty {op: ms} objects")
            shapes = data["layer_shapes"]
            if not isinstance(shapes, list) or not all(isinstance(shape, dict) for shape in shapes):
                raise ValueError("'layer_shapes' must be a list of objects")
            table = cls(
                str(data["space"]),
                str(data["identity"]),
                _shape(data["input_shape"], "input_shape"),
                list(shapes),
                _ms(data["stem_ms"], "stem_ms"),
                _ms(data["head_ms"], "head_ms"),
                [
                    {str(op): _ms(v, f"layers[{i}][{str(op)[:40]!r}]") for op, v in row.items()}
                    for i, row in enumerate(layers)
                ],
                dict(data.get("meta") or {}),
                _finite(data.get("offset_ms", 0.0), "offset_ms"),
                _blocks(data.get("stem"), "stem"),
                _blocks(data.get("head"), "head"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            what = f"missing key {e}" if isinstance(e, KeyError) else str(e)
            raise ConfigError(f"malformed latency table {path}: {what}") from None
        if len(table.layer_shapes) != len(table.layers):
            raise ConfigError(
                f"malformed latency table {path}: {len(table.layers)} layers of values, "
                f"{len(table.layer_shapes)} layer shapes"
            )
        if table.offset_ms < 0 and table.cheapest_ms <= 0:
            raise ConfigError(
                f"latency table {path}: offset_ms {table.offset_ms:g} makes the cheapest arch's predicted latency "
                f"{table.cheapest_ms:.4g} ms; a latency must be positive, so the offset must be above "
                f"{table.offset_ms - table.cheapest_ms:.4g} ms"
            )
        return table

    def check_fits(self, space: SearchSpace, identity: str) -> None:
        """Raise unless this table was measured for `space` (or a space it was pruned from): the same
        input, identity, stem, head and per layer the same shapes (input shape and activation too where
        the table stores them). A table without its stem and head (written before they were stored) is
        checked by the space options it records; one that records neither is refused."""
        where = f"latency table for space '{self.space}'"
        if self.space != space.name:
            raise ConfigError(f"{where} cannot time space '{space.name}'; build a table for it")
        if tuple(space.input_shape) != self.input_shape:
            raise ConfigError(
                f"{where} was measured at input {list(self.input_shape)}; "
                f"space '{space.name}' has input {list(space.input_shape)}"
            )
        if identity != self.identity:
            raise ConfigError(f"{where} was measured with identity '{self.identity}', the supernet uses '{identity}'")
        if len(self.layers) != space.num_layers:
            raise ConfigError(f"{where} has {len(self.layers)} layers, space '{space.name}' has {space.num_layers}")
        for part, stored, actual in (("stem", self.stem, space.stem), ("head", self.head, space.head)):
            if stored is not None and _neutral(stored) != _neutral(actual):
                raise ConfigError(
                    f"{where} was measured with another {part} than space '{space.name}' has "
                    f"(table {_brief(stored)}, space {_brief(actual)}); build a table for this space"
                )
        if self.stem is None or self.head is None:
            self._check_recorded_options(space, where)
        input_shapes = None
        for i, (layer, shape, row) in enumerate(zip(space.layers, self.layer_shapes, self.layers)):
            if (shape.get("in_channels"), shape.get("out_channels"), shape.get("stride")) != (
                layer.in_channels,
                layer.out_channels,
                layer.stride,
            ):
                raise ConfigError(f"{where}: layer {i} shape differs from space '{space.name}' (table {shape})")
            if "act" in shape and shape["act"] != layer.act:
                raise ConfigError(
                    f"{where}: layer {i} was measured with activation {shape['act']!r}, space '{space.name}' "
                    f"has {layer.act!r}"
                )
            if "input_shape" in shape:
                input_shapes = input_shapes or layer_input_shapes(space, identity)
                if shape["input_shape"] != list(input_shapes[i]):
                    raise ConfigError(
                        f"{where}: layer {i} was measured on input {_brief(shape['input_shape'])}, in space "
                        f"'{space.name}' it sees {list(input_shapes[i])} (another stem or stride); build a "
                        f"table for this space"
                    )
            missing = [op for op in layer.choices if op not in row]
            if missing:
                raise ConfigError(f"{where}: layer {i} has no latency for {', '.join(missing)}")

    def _check_recorded_options(self, space: SearchSpace, where: str) -> None:
        """A table without its stem and head: the space options it records must be the space's (those
        that change no latency aside); a table that records none cannot be checked and is refused."""
        recorded = self.meta.get("space_options")
        if not isinstance(recorded, dict):
            raise ConfigError(
                f"{where} records neither the stem and head it was measured with nor its space options, so "
                f"it cannot be checked against space '{space.name}'; rebuild it with `supernet latency-table`"
            )
        ours = _plain(dict(space.options))
        keys = sorted((set(recorded) | set(ours)) - {"dropout"})
        differ = [k for k in keys if _plain(recorded.get(k)) != ours.get(k)]
        if differ:
            said = ", ".join(f"{k}={_brief(recorded.get(k))} (space: {_brief(ours.get(k))})" for k in differ[:4])
            raise ConfigError(f"{where} was measured with other space options: {said}; build a table for this space")


def layer_input_shapes(space: SearchSpace, identity: str) -> list[tuple[int, ...]]:
    """The input shape (channels, height, width) each layer of a chain space sees, by running zeros
    through the stem and one candidate per layer (candidates of a layer give the same output shape)."""
    shape = _out_shape(nn.Sequential(*(build_block(c) for c in space.stem)), tuple(space.input_shape))
    shapes = []
    for layer in space.layers:
        shapes.append(shape)
        shape = _out_shape(build_block(exported_config(layer.choices[0], layer, identity)), shape)
    return shapes


def _plain(value: Any) -> Any:
    """A value as JSON stores it (tuples as lists), for comparing a table's records with a live space."""
    return json.loads(json.dumps(value, default=str))


def _neutral(blocks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Block configs without the fields that change no latency (`LATENCY_NEUTRAL`)."""
    out = []
    for block in _plain([dict(b) for b in blocks]):
        drop = LATENCY_NEUTRAL.get(block.get("type"), ())
        out.append({k: v for k, v in block.items() if k not in drop})
    return out


def _brief(value: Any, limit: int = 120) -> str:
    """A stored value made safe for a one-line message: JSON, escaped, cut to `limit` characters."""
    text = json.dumps(value, default=str, ensure_ascii=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _ms(value: Any, where: str = "latency") -> float:
    number = _finite(value, where)
    if number < 0:
        raise ValueError(f"{where} {value!r} is not a non-negative number of milliseconds")
    return number


def _finite(value: Any, where: str = "value") -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise ValueError(f"{where} {_brief(value, 40)} is not a finite number of milliseconds")
    if abs(value) > MAX_MS:  # (an int too large for a float is caught here, before any float() of it)
        raise ValueError(f"{where} {value:g} ms is out of range: entries must lie within +-{MAX_MS:g} ms (1,000 s)")
    return float(value)


def _shape(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(type(v) is int and v > 0 for v in value):
        raise ValueError(f"{where} {_brief(value, 40)} is not a list of positive integers")
    return tuple(value)


def _blocks(value: Any, where: str) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(b, dict) for b in value):
        raise ValueError(f"{where!r} must be a list of block configs (objects)")
    return [dict(b) for b in value]


# -- measuring ----------------------------------------------------------------------------------------------
def timing_jobs(
    space: SearchSpace, identity: str
) -> Iterator[tuple[str, int | None, str | None, nn.Module | None, tuple[int, ...]]]:
    """(part, layer, op, module, input shape) for stem, every (layer, op) and head, in forward order;
    module None for an op that the stand-alone model drops (an identity that keeps the shape)."""
    if space.topology != "chain":
        raise SpaceError(
            f"space '{space.name}' has topology '{space.topology}': its ops run inside repeated cells, "
            f"so a per-layer latency table would not add up to a model's latency; latency tables "
            f"are built for chain spaces (stem, one block per layer, head)"
        )
    shape = tuple(space.input_shape)
    stem = nn.Sequential(*(build_block(c) for c in space.stem))
    yield "stem", None, None, stem, shape
    shape = _out_shape(stem, shape)
    for i, layer in enumerate(space.layers):
        outs = set()
        for op in layer.choices:
            config = exported_config(op, layer, identity)
            block = build_block(config)
            outs.add(_out_shape(block, shape))
            yield "layer", i, op, (None if config["type"] == "identity" else block), shape
        if len(outs) != 1:
            raise SpaceError(f"layer {i}: candidates give different output shapes for input {shape}")
        shape = outs.pop()
    yield "head", None, None, nn.Sequential(*(build_block(c) for c in space.head)), shape


def _out_shape(module: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    with torch.no_grad():
        return tuple(module.eval()(torch.zeros(1, *shape)).shape[1:])


def build_latency_table(
    space: SearchSpace, identity: str, settings: TimingSettings, progress: Callable[[int], Any] | None = None
) -> LatencyTable:
    """Time stem, head and every (layer, op); `progress(total)` returns a tqdm-like bar (or None)."""
    jobs = list(timing_jobs(space, identity))
    bar = progress(len(jobs)) if progress else None
    rows: list[dict[str, float]] = [{} for _ in space.layers]
    layer_shapes: list[dict[str, Any]] = [{} for _ in space.layers]
    fixed = {}
    for part, i, op, module, shape in jobs:
        if part == "layer":
            assert i is not None
            layer = space.layers[i]
            layer_shapes[i] = {
                "in_channels": layer.in_channels,
                "out_channels": layer.out_channels,
                "stride": layer.stride,
                "act": layer.act,
                "input_shape": list(shape),
            }
            assert op is not None
            rows[i][op] = 0.0 if module is None else time_module(module, shape, settings)
        else:
            assert module is not None
            fixed[part] = time_module(module, shape, settings)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return LatencyTable(
        space.name,
        identity,
        tuple(space.input_shape),
        layer_shapes,
        fixed["stem"],
        fixed["head"],
        rows,
        measurement_meta(space, settings),
        stem=_plain([dict(b) for b in space.stem]),
        head=_plain([dict(b) for b in space.head]),
    )


def measurement_meta(space: SearchSpace, settings: TimingSettings) -> dict[str, Any]:
    """Where, with what and when the table was measured."""
    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    if settings.backend == "onnxruntime":
        versions["onnxruntime"] = require("onnxruntime", "--backend onnxruntime").__version__
    return {
        "device": settings.device,
        "backend": settings.backend,
        "batch_size": settings.batch_size,
        "threads": settings.threads,
        "timing": asdict(settings),
        "versions": versions,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "space_options": dict(space.options),
        "fingerprint": space.fingerprint(),
        "unit": "ms",
    }


def model_timer(space: SearchSpace, identity: str, settings: TimingSettings) -> ArchTimer:
    """Times an arch's whole stand-alone model (the one `export` builds) on `settings`' backend."""
    from supernet.model.export import standalone_config
    from supernet.model.standalone import StandaloneNet

    def measure(arch: Arch) -> float:
        model = StandaloneNet(standalone_config(space, arch, identity))
        return time_module(model, tuple(space.input_shape), settings)

    return measure


def _measure(
    table: LatencyTable, archs: Sequence[Arch], measure: ArchTimer, progress: Callable[[int], Any] | None
) -> list[dict[str, Any]]:
    """Per arch: its name, the table's prediction and the measured latency of its whole model."""
    bar = progress(len(archs)) if progress else None
    rows = []
    for arch in archs:
        rows.append({"arch": arch.to_string(), "predicted_ms": table.predict(arch), "measured_ms": measure(arch)})
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return rows


def _mape(predicted: np.ndarray, measured: np.ndarray) -> float:
    return float(np.mean(np.abs(predicted - measured) / measured))


def calibrate_latency_table(
    table: LatencyTable,
    space: SearchSpace,
    measure: ArchTimer,
    count: int = CALIBRATION_ARCHS,
    seed: int = 0,
    progress: Callable[[int], Any] | None = None,
) -> LatencyTable:
    """The table calibrated on `count` whole models: a robust line measured = scale x predicted +
    offset (Theil-Sen, `scipy.stats.theilslopes`), folded in with `LatencyTable.scaled`.

    Blocks timed one by one under-predict a model (per-block overhead, cold caches in the model).
    The archs are spread over the predicted range like `validate_latency_table`'s, from another
    seed, and the validation leaves them out. Scale, offset and the measurements go into
    `meta["calibration"]`. A fit whose scale is not positive (timings too noisy to order the
    archs) is recorded but not applied.
    """
    from scipy.stats import theilslopes

    if count < 2:
        raise ConfigError(f"--calibrate must be 0 (off) or at least 2 archs (a line has two parameters), got {count}")
    archs = spread_sample(table, space, count, random.Random(f"latency-calibration:{seed}"))
    rows = _measure(table, archs, measure, progress)
    predicted = np.array([r["predicted_ms"] for r in rows])
    measured = np.array([r["measured_ms"] for r in rows])
    if np.ptp(predicted) <= 0:
        raise ConfigError(
            f"calibration needs archs of different predicted latency; the space offers {len(rows)} "
            f"with {predicted[0]:.4g} ms each (use --calibrate 0)"
        )
    fit = theilslopes(measured, predicted)
    scale, offset = float(fit.slope), float(fit.intercept)
    applied = math.isfinite(scale) and math.isfinite(offset) and scale > 0
    # a line that would predict a non-positive latency for some arch (or leave the loadable range) is
    # not applied either: `LatencyTable.load` refuses such a table
    applied = applied and _loadable(table.scaled(scale, offset))
    out = table.scaled(scale, offset) if applied else replace(table, meta=copy.deepcopy(table.meta))
    out.meta["calibration"] = {
        "archs": len(rows),
        "seed": seed,
        "method": "Theil-Sen line measured = scale * predicted + offset (scipy.stats.theilslopes)",
        "scale": scale,
        "offset_ms": offset,
        "applied": applied,
        "mape_before": _mape(predicted, measured),
        "mape_after": _mape(scale * predicted + offset, measured) if applied else _mape(predicted, measured),
        "rows": rows,
        "timing": table.meta.get("timing"),
    }
    return out


def _loadable(table: LatencyTable) -> bool:
    """Whether `LatencyTable.load` accepts the table's numbers: entries in range, cheapest arch > 0."""
    entries = [table.stem_ms, table.head_ms, *(ms for row in table.layers for ms in row.values())]
    in_range = all(0 <= ms <= MAX_MS for ms in entries) and abs(table.offset_ms) <= MAX_MS
    return in_range and (table.offset_ms >= 0 or table.cheapest_ms > 0)


def validate_latency_table(
    table: LatencyTable,
    space: SearchSpace,
    settings: TimingSettings,
    count: int,
    seed: int = 0,
    progress: Callable[[int], Any] | None = None,
    measure: ArchTimer | None = None,
) -> dict[str, Any]:
    """Measure `count` sampled archs' whole stand-alone models; MAPE and Kendall tau of the predictions.

    `measure` times an arch (default: `model_timer` on `settings`). Archs the table was calibrated
    on are left out. Stored in `table.meta["validation"]` and returned.
    """
    from scipy.stats import kendalltau

    measure = measure or model_timer(space, table.identity, settings)
    calibration = table.meta.get("calibration") or {}
    calibrated_on = frozenset(Arch(tuple(str(r["arch"]).split(","))) for r in calibration.get("rows", []))
    archs = spread_sample(table, space, count, random.Random(seed), exclude=calibrated_on)
    rows = _measure(table, archs, measure, progress)
    predicted = np.array([r["predicted_ms"] for r in rows])
    measured = np.array([r["measured_ms"] for r in rows])
    tau = float(kendalltau(predicted, measured).statistic) if len(rows) > 1 else float("nan")
    result = {
        "archs": len(rows),
        "seed": seed,
        "mape": _mape(predicted, measured),
        "kendall_tau": tau,
        "rows": rows,
        "timing": asdict(settings),
    }
    if calibration.get("applied"):  # what the table would have scored without its calibration
        raw = (predicted - calibration["offset_ms"]) / calibration["scale"]
        result["mape_uncalibrated"] = _mape(raw, measured)
    table.meta["validation"] = result
    return result


def spread_sample(
    table: LatencyTable,
    space: SearchSpace,
    count: int,
    rng: random.Random,
    steps: int = 400,
    exclude: frozenset[Arch] = frozenset(),
) -> list[Arch]:
    """`count` distinct archs (none of `exclude`) whose predicted latencies are spread evenly over
    the achievable range (5%..95%): arch k starts uniform and takes random one-layer changes that
    bring its prediction closer to target k. Uniform samples alone bunch around the mean (a +-10%
    spread in scarlet-s1), where measurement noise decides the order and Kendall tau says little."""
    low = table.fixed_ms + sum(min(row[op] for op in layer.choices) for row, layer in zip(table.layers, space.layers))
    high = table.fixed_ms + sum(max(row[op] for op in layer.choices) for row, layer in zip(table.layers, space.layers))
    wanted = min(count, space.size - len(exclude))
    archs: dict[Arch, None] = {}
    for _ in range(max(0, wanted) * 5):
        if len(archs) >= wanted:
            break
        fraction = 0.05 + 0.9 * (len(archs) / max(1, count - 1))
        arch = _walk_to(table, space, low + fraction * (high - low), rng, steps, exclude.union(archs))
        if arch not in exclude:
            archs.setdefault(arch, None)
    return list(archs)


def _walk_to(
    table: LatencyTable, space: SearchSpace, target: float, rng: random.Random, steps: int, avoid: frozenset[Arch]
) -> Arch:
    """The end of a greedy random walk towards `target`; archs in `avoid` count as infinitely far."""

    def gap(ops: list[str]) -> float:
        arch = Arch(tuple(ops))
        return math.inf if arch in avoid else abs(table.predict(arch) - target)

    ops = list(space.sample(rng).ops)
    current = gap(ops)
    for _ in range(steps):
        i = rng.randrange(space.num_layers)
        old = ops[i]
        ops[i] = rng.choice(space.layers[i].choices)
        new = gap(ops)
        if new <= current:
            current = new
        else:
            ops[i] = old
    return Arch(tuple(ops))


# -- using ---------------------------------------------------------------------------------------------------
def latency_metric(table: LatencyTable, space: SearchSpace, identity: str) -> tuple[float, list[Mapping[str, float]]]:
    """(fixed, per-layer op -> ms) for `CostTable.with_metric(METRIC, ...)`, checked against `space`."""
    table.check_fits(space, identity)
    return table.fixed_ms, [{op: row[op] for op in layer.choices} for layer, row in zip(space.layers, table.layers)]


def with_latency(cost_table: Any, path: str | Path, space: SearchSpace, identity: str) -> Any:
    """`cost_table` with the `latency_ms` metric of the latency table at `path`."""
    fixed, values = latency_metric(LatencyTable.load(path), space, identity)
    return cost_table.with_metric(METRIC, fixed, values)


def reachable_values(
    fixed: float, rows: Sequence[Sequence[float]], resolution: float | None = None, bins: int = WINDOW_BINS
) -> np.ndarray:
    """Every total `fixed + sum(one value per row)` can take, on a grid (a dynamic program over the
    rows; exact up to rounding each value to the grid). The grid step is `grid_step`: at least
    `resolution` and at least the achievable range over `bins`, so time and memory stay bounded
    (about `bins` cells) whatever the values; the cheapest and dearest totals are exact. Sorted, in
    the rows' unit."""
    step = grid_step(rows, resolution, bins)
    rows = [np.asarray(row, dtype=float) for row in rows]
    reachable = np.ones(1, dtype=bool)
    for row in rows:
        steps = np.rint((row - row.min()) / step).astype(np.int64)  # relative to the row's cheapest value
        nxt = np.zeros(len(reachable) + int(steps.max()), dtype=bool)
        for s in np.unique(steps):
            nxt[s : s + len(reachable)] |= reachable
        reachable = nxt
    low, high = fixed + sum(float(row.min()) for row in rows), fixed + sum(float(row.max()) for row in rows)
    values = np.clip(low + np.flatnonzero(reachable) * step, low, high)  # no total lies outside [low, high]
    values[0], values[-1] = low, high  # the cheapest and the dearest arch: exact
    return values


def grid_step(rows: Sequence[Sequence[float]], resolution: float | None = None, bins: int = WINDOW_BINS) -> float:
    """The grid step of `reachable_values`: the achievable range over `bins` (at least `resolution`)."""
    span = sum(max(row) - min(row) for row in rows)
    if not math.isfinite(span):
        raise ValueError(f"the rows' range {span} is not finite")
    step = max(resolution or 0.0, span / bins)
    return step if step > 0 else 1.0  # a single reachable total: any step


def check_window(
    fixed: float,
    rows: Sequence[Sequence[float]],
    low: float | None,
    high: float | None,
    metric: str = METRIC,
    resolution: float | None = None,
) -> None:
    """Raise `SearchError` with the achievable range when no arch's total lies in [low, high]."""
    from supernet.core.errors import SearchError

    values = reachable_values(fixed, rows, resolution)
    lo, hi = -math.inf if low is None else low, math.inf if high is None else high
    tolerance = grid_step(rows, resolution) * len(rows)  # each row was rounded to the grid
    if np.any((values >= lo - tolerance) & (values <= hi + tolerance)):
        return
    window = f"{'' if low is None else f'{low:g} <= '}{metric}{'' if high is None else f' <= {high:g}'}"
    below, above = values[values < lo], values[values > hi]
    near = []
    if below.size:
        near.append(f"the nearest below is {below.max():.4g}")
    if above.size:
        near.append(f"the nearest above is {above.min():.4g}")
    raise SearchError(
        f"no architecture can satisfy {window}: the achievable range is {metric} "
        f"{values.min():.4g}..{values.max():.4g}" + (f" ({', '.join(near)})" if near else "")
    )


def write_latency_table(
    space: SearchSpace,
    identity: str,
    settings: TimingSettings,
    out: Path,
    validate: int = 0,
    seed: int = 0,
    calibrate: int = CALIBRATION_ARCHS,
) -> LatencyTable:
    """Build, calibrate on `calibrate` whole models (0: off) and with `validate` > 0 validate a table,
    with tqdm progress bars; write it to `out`, which must not exist yet (a user's earlier table is
    never overwritten)."""
    from tqdm import tqdm

    out = Path(out)
    if out.exists():
        raise ConfigError(f"{out} already exists; choose another --out (nothing was overwritten)")
    if validate < 0:
        raise ConfigError(f"--validate must be >= 0 archs, got {validate}")
    if calibrate != 0 and calibrate < 2:
        raise ConfigError(
            f"--calibrate must be 0 (off) or at least 2 archs (a line has two parameters), got {calibrate}"
        )
    table = build_latency_table(
        space, identity, settings, progress=lambda n: tqdm(total=n, desc="latency table", unit="block")
    )
    measure = model_timer(space, identity, settings)
    if calibrate:
        table = calibrate_latency_table(
            table, space, measure, calibrate, seed, progress=lambda n: tqdm(total=n, desc="calibration", unit="model")
        )
    if validate:
        validate_latency_table(
            table,
            space,
            settings,
            validate,
            seed,
            progress=lambda n: tqdm(total=n, desc="validation", unit="model"),
            measure=measure,
        )
    table.save(out)
    return table
