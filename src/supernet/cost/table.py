"""Per-candidate cost tables: count every (layer, op) block once, then price any Arch in microseconds.

The stand-alone model of an arch is a chain (stem, one exported block per layer, head), so its
cost is the fixed cost of stem and head plus one table entry per layer. Entries are counted on
the *exported* blocks (`exported_config`), so shape-keeping identities cost nothing and
shape-changing ones cost their 1x1 projection (skip) or their ELS conv (els).

Built-in metrics are `macs` and `params`; more per-candidate metrics (a latency look-up table,
BitOps) plug in with `CostTable.with_metric` and come back in `Cost.extra`. Spaces with quantized
choices get `bitops` (`supernet.cost.bitops`) when the table is counted.
"""

from __future__ import annotations

import json
import os
import tempfile
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from supernet.core.errors import ConfigError, SpaceError
from supernet.cost import bitops
from supernet.cost.additive import build_additive_table
from supernet.cost.counter import count_all
from supernet.cost.value import BUILTIN_METRICS, Cost, Number
from supernet.ops.blocks import build_block
from supernet.ops.candidates import IDENTITY_MODES, exported_config
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace

TABLE_FORMAT = "supernet.cost-table/1"


class CostTable:
    """Cost of every candidate of every layer plus the fixed stem/head cost, for one space and
    identity mode. Use `CostTable.build(space, identity)`; `query(arch)` prices an arch."""

    def __init__(
        self,
        choices: Sequence[Sequence[str]],
        fixed: Mapping[str, Number],
        layers: Mapping[str, Sequence[Sequence[Number]]],
        *,
        space: str = "",
        fingerprint: str = "",
        identity: str = "skip",
    ) -> None:
        self.choices: tuple[tuple[str, ...], ...] = tuple(tuple(c) for c in choices)
        self.space_name, self.fingerprint, self.identity = space, fingerprint, identity
        missing = [m for m in BUILTIN_METRICS if m not in layers or m not in fixed]
        if missing or set(fixed) != set(layers):
            raise ConfigError(
                f"cost table needs fixed and per-layer values for the same metrics, "
                f"including {list(BUILTIN_METRICS)}; got fixed {sorted(fixed)}, layers {sorted(layers)}"
            )
        self._fixed: dict[str, Number] = {}
        self._rows: dict[str, tuple[tuple[Number, ...], ...]] = {}
        for name, rows in layers.items():
            rows = tuple(tuple(_number(v, name) for v in row) for row in rows)
            if len(rows) != len(self.choices) or any(len(r) != len(c) for r, c in zip(rows, self.choices)):
                raise ConfigError(f"cost table metric {name!r}: values do not match the layers' choices")
            self._rows[name] = rows
            self._fixed[name] = _number(fixed[name], name)
        # Query fast path: per metric, one dict op -> value per layer (plain Python numbers).
        self._lookup = {
            name: [dict(zip(c, r)) for c, r in zip(self.choices, rows)] for name, rows in self._rows.items()
        }
        self._macs, self._params = self._lookup["macs"], self._lookup["params"]
        self._extra_names = tuple(n for n in self._rows if n not in BUILTIN_METRICS)
        self._index = [{op: i for i, op in enumerate(c)} for c in self.choices]

    # ----------------------------------------------------------------------------- building
    @classmethod
    def build(cls, space: SearchSpace, identity: str = "skip", cache_dir: str | os.PathLike | None = None) -> CostTable:
        """Count the fixed part and every (layer, op) exported block with a real counter.

        With `cache_dir`, the table is read from / written to a JSON file keyed by the space's
        fingerprint and the identity mode. `identity="let"` prices the LET paper's stand-alone models of an
        ELS space instead (`supernet.cost.let.LetCostTable`, not cached: no sum of per-layer values).
        """
        if identity == "let":
            from supernet.cost.let import LetCostTable

            return LetCostTable.build(space)
        if identity not in IDENTITY_MODES:
            raise ConfigError(f"identity must be one of {(*IDENTITY_MODES, 'let')}, got {identity!r}")
        path = None
        if cache_dir is not None:
            path = Path(cache_dir) / f"cost-{space.name}-{space.fingerprint()}-{identity}.json"
            if path.is_file():
                try:
                    table = cls.from_dict(json.loads(path.read_text()))
                    if table.fingerprint == space.fingerprint() and table.identity == identity:
                        return table
                except (ValueError, ConfigError):
                    pass  # unreadable or stale cache: rebuild and overwrite
        table = cls._count(space, identity)
        if path is not None:
            table.save(path)
        return table

    @classmethod
    def _count(cls, space: SearchSpace, identity: str) -> CostTable:
        if space.topology != "chain":  # cells: counted on whole models (supernet.cost.additive)
            return build_additive_table(cls, space, identity)
        fixed = {"macs": 0, "params": 0}
        shape: tuple[int, ...] = tuple(space.input_shape)

        def add_fixed(configs: Sequence[Mapping[str, Any]], shape: tuple[int, ...]) -> tuple[int, ...]:
            for config in configs:
                macs, params, shape = count_all(build_block(config), shape)
                fixed["macs"] += macs
                fixed["params"] += params
            return shape

        shape = add_fixed(space.stem, shape)
        macs_rows, params_rows = [], []
        for i, layer in enumerate(space.layers):
            macs_row, params_row, out_shapes, counted = [], [], {}, {}
            for op in layer.choices:
                config = exported_config(op, layer, identity)
                key = json.dumps(bitops.without_bits(config), sort_keys=True)  # bit widths change no MAC
                if key not in counted:
                    counted[key] = count_all(build_block(config), shape)
                macs, params, out = counted[key]
                macs_row.append(macs)
                params_row.append(params)
                out_shapes[op] = out
            if len(set(out_shapes.values())) != 1:
                raise SpaceError(f"layer {i}: candidates give different output shapes for input {shape}: {out_shapes}")
            shape = next(iter(out_shapes.values()))
            macs_rows.append(macs_row)
            params_rows.append(params_row)
        add_fixed(space.head, shape)
        table = cls(
            [layer.choices for layer in space.layers],
            fixed,
            {"macs": macs_rows, "params": params_rows},
            space=space.name,
            fingerprint=space.fingerprint(),
            identity=identity,
        )
        if not bitops.is_quantized(space, identity):
            return table
        macs = [dict(zip(layer.choices, row)) for layer, row in zip(space.layers, macs_rows)]
        return table.with_metric(bitops.METRIC, 0, bitops.bitops_rows(space, identity, macs))

    def with_metric(self, name: str, fixed: Number, values: Sequence[Mapping[str, Number]]) -> CostTable:
        """A copy with one more per-candidate metric: `values[layer][op]` (e.g. a latency LUT)."""
        if name in self._rows:
            raise ConfigError(f"cost table already has metric {name!r}")
        if len(values) != len(self.choices):
            raise ConfigError(f"metric {name!r}: {len(values)} layers given, table has {len(self.choices)}")
        rows = []
        for i, (row, choices) in enumerate(zip(values, self.choices)):
            missing = [op for op in choices if op not in row]
            if missing:
                raise ConfigError(f"metric {name!r}: layer {i} lacks values for {missing}")
            rows.append([row[op] for op in choices])
        return CostTable(
            self.choices,
            {**self._fixed, name: fixed},
            {**self._rows, name: rows},
            space=self.space_name,
            fingerprint=self.fingerprint,
            identity=self.identity,
        )

    # ----------------------------------------------------------------------------- queries
    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self._rows)

    @property
    def num_layers(self) -> int:
        return len(self.choices)

    def query(self, arch: Arch) -> Cost:
        """Cost of the stand-alone model of `arch` (a few microseconds)."""
        ops = arch.ops
        if len(ops) != len(self.choices):
            raise SpaceError(f"arch has {len(ops)} layers, cost table has {len(self.choices)}")
        get = dict.__getitem__
        try:
            macs = self._fixed["macs"] + sum(map(get, self._macs, ops))
            params = self._fixed["params"] + sum(map(get, self._params, ops))
            if not self._extra_names:
                return Cost(macs, params)
            extra = {n: self._fixed[n] + sum(map(get, self._lookup[n], ops)) for n in self._extra_names}
        except KeyError:
            raise self._bad_op(ops) from None
        return Cost(macs, params, types.MappingProxyType(extra))

    def value(self, arch: Arch, metric: str) -> Number:
        """One metric of `arch` (e.g. `table.value(arch, "macs")`)."""
        if metric not in self._lookup:
            raise ConfigError(f"unknown cost metric {metric!r}; have: {', '.join(self._lookup)}")
        if len(arch.ops) != len(self.choices):
            raise SpaceError(f"arch has {len(arch.ops)} layers, cost table has {len(self.choices)}")
        try:
            return self._fixed[metric] + sum(map(dict.__getitem__, self._lookup[metric], arch.ops))
        except KeyError:
            raise self._bad_op(arch.ops) from None

    def _bad_op(self, ops: Sequence[str]) -> SpaceError:
        for i, (op, choices) in enumerate(zip(ops, self.choices)):
            if op not in self._index[i]:
                return SpaceError(f"layer {i}: '{op}' is not a choice; allowed: {', '.join(choices)}")
        return SpaceError("arch does not fit the cost table")  # pragma: no cover

    def fixed(self, metric: str) -> Number:
        """Cost of the fixed part (stem and head)."""
        return self._fixed[metric]

    def layer_values(self, metric: str) -> tuple[tuple[Number, ...], ...]:
        """Per layer, `metric` of each choice (in the layer's choice order)."""
        return self._rows[metric]

    def layer_costs(self, metric: str) -> np.ndarray:
        """Dense [layer, choice index] array of `metric`, padded with 0 where a layer has fewer choices."""
        rows = self._rows[metric]
        integral = all(isinstance(v, int) for row in rows for v in row)
        out = np.zeros((len(rows), max((len(r) for r in rows), default=0)), np.int64 if integral else np.float64)
        for i, row in enumerate(rows):
            out[i, : len(row)] = row
        return out

    def range(self, metric: str) -> tuple[Number, Number]:
        """(min, max) of `metric` over all archs of the table (sums of per-layer extremes)."""
        rows = self._rows[metric]
        base = self._fixed[metric]
        return base + sum(min(r) for r in rows), base + sum(max(r) for r in rows)

    def macs_range(self) -> tuple[int, int]:
        lo, hi = self.range("macs")
        return int(lo), int(hi)

    # ----------------------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TABLE_FORMAT,
            "space": self.space_name,
            "fingerprint": self.fingerprint,
            "identity": self.identity,
            "choices": [list(c) for c in self.choices],
            "metrics": {
                n: {"fixed": self._fixed[n], "layers": [list(r) for r in rows]} for n, rows in self._rows.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostTable:
        if not isinstance(data, Mapping) or data.get("format") != TABLE_FORMAT:
            got = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise ConfigError(f"not a cost table: format {got!r}, expected {TABLE_FORMAT!r}")
        try:
            metrics = data["metrics"]
            return cls(
                data["choices"],
                {n: m["fixed"] for n, m in metrics.items()},
                {n: m["layers"] for n, m in metrics.items()},
                space=str(data.get("space", "")),
                fingerprint=str(data.get("fingerprint", "")),
                identity=str(data.get("identity", "skip")),
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise ConfigError(f"malformed cost table: {type(e).__name__}: {e}") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write the table as JSON (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.to_dict(), f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike) -> CostTable:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read cost table {path}: {e}") from None
        return cls.from_dict(data)

    def __repr__(self) -> str:
        lo, hi = self.macs_range()
        return (
            f"CostTable(space={self.space_name!r}, identity={self.identity!r}, layers={self.num_layers}, "
            f"metrics={list(self.metrics)}, macs=[{lo}, {hi}])"
        )


def _number(value: Any, metric: str) -> Number:
    """A plain Python int or float (so that sums are exact for integer metrics)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"cost metric {metric!r}: {value!r} is not a number")
    return int(value) if isinstance(value, (int, np.integer)) else float(value)
