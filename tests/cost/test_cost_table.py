"""CostTable queries equal counting the exported stand-alone model, exactly."""

import json
import random

import pytest

from supernet.core.errors import ConfigError, SpaceError
from supernet.cost import Cost, CostTable, count_macs, count_params
from supernet.model.export import standalone_config
from supernet.model.standalone import StandaloneNet
from supernet.space import Arch, create_space

CASES = [(identity, place) for identity in ("skip", "els") for place in ("same-shape", "all")]


def _space(identity_in="same-shape"):
    return create_space("scarlet-s1", preset="fashion-mnist", identity_in=identity_in)


@pytest.fixture(scope="module")
def tables():
    return {(identity, place): (_space(place), CostTable.build(_space(place), identity)) for identity, place in CASES}


def _archs(space, n, seed):
    rng = random.Random(seed)
    archs = [space.sample(rng) for _ in range(n)]
    # Extremes: cheapest-looking and largest candidates, and 'id' wherever allowed.
    archs.append(Arch(tuple(layer.choices[-1] for layer in space.layers)))
    archs.append(Arch(tuple("e6k7" for _ in space.layers)))
    return archs


@pytest.mark.parametrize("identity,place", CASES)
def test_query_equals_counting_exported_model(tables, identity, place):
    space, table = tables[identity, place]
    for arch in _archs(space, 4, seed=CASES.index((identity, place))):
        model = StandaloneNet(standalone_config(space, arch, identity))
        expected = Cost(count_macs(model, space.input_shape), count_params(model))
        assert table.query(arch) == expected, arch
        assert table.value(arch, "macs") == expected.macs


def test_identity_modes_differ_where_shape_changes(tables):
    # With identity everywhere, a shape-changing 'id' is a 1x1 conv+BN (skip) or a bare 1x1 conv (els).
    space, skip = tables["skip", "all"]
    _, els = tables["els", "all"]
    changing = [i for i, layer in enumerate(space.layers) if not layer.keeps_shape]
    arch = Arch(tuple("id" for _ in space.layers))
    assert skip.query(arch).macs == els.query(arch).macs
    bn = sum(2 * space.layers[i].out_channels for i in changing)
    assert skip.query(arch).params - els.query(arch).params == bn


def test_macs_range_bounds_samples(tables):
    for (_identity, _place), (space, table) in tables.items():
        lo, hi = table.macs_range()
        assert 0 < lo < hi
        values = [table.query(a).macs for a in _archs(space, 200, seed=1)]
        assert all(lo <= v <= hi for v in values)
        # The bounds are attained by the per-layer argmin / argmax archs.
        dense = table.layer_costs("macs")
        for pick, bound in ((min, lo), (max, hi)):
            arch = Arch(
                tuple(
                    min(c, key=lambda op, i=i: dense[i, c.index(op)])
                    if pick is min
                    else max(c, key=lambda op, i=i: dense[i, c.index(op)])
                    for i, c in enumerate(table.choices)
                )
            )
            assert table.query(arch).macs == bound


def test_dense_layout(tables):
    space, table = tables["skip", "same-shape"]
    dense = table.layer_costs("macs")
    width = max(len(layer.choices) for layer in space.layers)
    assert dense.shape == (space.num_layers, width)
    for i, layer in enumerate(space.layers):
        assert (dense[i, len(layer.choices) :] == 0).all()
        if "id" in layer.choices:
            assert dense[i, layer.choices.index("id")] == 0
    arch = space.sample(random.Random(3))
    idx = space.indices(arch)
    assert table.query(arch).macs == table.fixed("macs") + sum(int(dense[i, j]) for i, j in enumerate(idx))


def test_round_trip_and_cache(tables, tmp_path):
    space, table = tables["els", "all"]
    again = CostTable.from_dict(json.loads(json.dumps(table.to_dict())))
    arch = space.sample(random.Random(5))
    assert again.query(arch) == table.query(arch)
    assert again.fingerprint == space.fingerprint() and again.identity == "els"

    built = CostTable.build(space, "els", cache_dir=tmp_path)
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1 and space.fingerprint() in files[0].name and "els" in files[0].name
    data = json.loads(files[0].read_text())
    data["metrics"]["macs"]["fixed"] += 1  # a tampered cache is what a cached build returns
    files[0].write_text(json.dumps(data))
    assert CostTable.build(space, "els", cache_dir=tmp_path).query(arch).macs == built.query(arch).macs + 1
    files[0].write_text("{not json")
    assert CostTable.build(space, "els", cache_dir=tmp_path).query(arch) == built.query(arch)


def test_bad_inputs(tables):
    space, table = tables["skip", "same-shape"]
    arch = space.sample(random.Random(0))
    with pytest.raises(SpaceError, match="layer 0"):
        table.query(arch.replace(0, "e9k9"))
    with pytest.raises(SpaceError, match="layers"):
        table.query(Arch(arch.ops[:-1]))
    with pytest.raises(ConfigError):
        CostTable.build(space, "nope")
    with pytest.raises(ConfigError):
        CostTable.from_dict({"format": "other"})


def test_plugged_metric(tables):
    space, table = tables["skip", "same-shape"]
    lut = [{op: 0.5 + j for j, op in enumerate(layer.choices)} for layer in space.layers]
    timed = table.with_metric("latency_ms", 1.0, lut)
    arch = space.sample(random.Random(7))
    cost = timed.query(arch)
    expected = 1.0 + sum(row[op] for row, op in zip(lut, arch.ops))
    assert cost["latency_ms"] == pytest.approx(expected)
    assert (cost.macs, cost.params) == (table.query(arch).macs, table.query(arch).params)
    assert CostTable.from_dict(timed.to_dict()).query(arch) == cost
    assert timed.range("latency_ms")[0] == pytest.approx(1.0 + 0.5 * space.num_layers)
    with pytest.raises(ConfigError):
        table.with_metric("latency_ms", 0.0, lut[:-1])
