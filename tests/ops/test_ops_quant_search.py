"""BitOps as a search constraint and objective (`--max-bitops`), in every strategy, and in `supernet cost`."""

from __future__ import annotations

import csv
import itertools
import json
import random

import pytest

from supernet.cli import main
from supernet.config.schema import load_config
from supernet.cost import CostTable
from supernet.jobs.search import search_problem, search_table
from supernet.space import create_space
from tests.conftest import search_options

OPTIONS = {"layers_per_stage": [1, 1, 1, 1], "bits": [[1, 2], [4, 4]], "bottleneck_scales": [0.5, 1.5]}
SPACE = [
    "--space",
    "resnet18-quant",
    "--preset",
    "fashion-mnist",
    *itertools.chain.from_iterable(("--option", f"{k}={json.dumps(v)}") for k, v in OPTIONS.items()),
]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """Every arch of a 4^4 quantized space with a made-up accuracy that grows with BitOps."""
    space = create_space("resnet18-quant", preset="fashion-mnist", **OPTIONS)
    costs = CostTable.build(space)
    top = costs.range("bitops")[1]
    path = tmp_path_factory.mktemp("qtable") / "table.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "accuracy"])
        for indices in itertools.product(*[range(len(layer.choices)) for layer in space.layers]):
            arch = space.from_indices(indices)
            noise = random.Random(str(indices)).random() / 20
            w.writerow([arch.to_string(), round(0.9 * costs.query(arch)["bitops"] / top + noise, 5)])
    return path, space, costs


@pytest.mark.parametrize("strategy", ["random", "evolution", "nsga2", "ces"])
def test_every_strategy_respects_max_bitops(tmp_path, table, strategy):
    path, space, costs = table
    budget = sorted(costs.query(space.sample(random.Random(i)))["bitops"] for i in range(40))[20]
    cfg = load_config(
        None,
        [
            f"search.strategy={strategy}",
            f"search.max_bitops={budget}",
            search_options(strategy, 8, 3, 24),
            "search.cost_metric=bitops",
            "search.min_acc=0.0",
        ],
    )
    out = search_table(cfg, path, space, tmp_path / "s")
    archs = [out["best"]] + [t["arch"] for t in out["topk"]] + [p["arch"] for p in out.get("pareto", [])]
    assert all(costs.query(space.parse_arch(a))["bitops"] <= budget for a in archs)
    assert "bitops <=" in out["problem"]


def test_cost_metric_makes_bitops_the_multi_objective_cost():
    cfg = load_config(None, ["search.strategy=nsga2", "search.cost_metric=bitops", "search.max_bitops=6.3G"])
    problem = search_problem(cfg)
    assert "bitops" in [o.metric for o in problem.objectives] and "macs" not in [o.metric for o in problem.objectives]
    assert [(c.metric, c.max) for c in problem.constraints] == [("bitops", 6.3e9)]


def test_cost_prints_bitops_beside_macs_and_params(capsys):
    assert main(["cost", *SPACE, "--arch", "w1a2@0.5,w4a4@1.5,w1a2@1.5,w4a4@0.5"]) == 0
    out = capsys.readouterr().out
    assert "MACs" in out and "params" in out and "bitops" in out


def test_max_bitops_on_a_space_without_bits_is_a_one_line_error(tmp_path, capsys):
    space = create_space("nas-bench-macro", preset="fashion-mnist")
    path = tmp_path / "table.csv"
    rows = [space.from_indices(i).to_string() for i in itertools.product(*[range(3)] * space.num_layers)]
    path.write_text("arch,accuracy\n" + "".join(f'"{arch}",0.5\n' for arch in rows))
    code = main(
        [
            "search",
            "--table",
            str(path),
            "--space",
            "nas-bench-macro",
            "--preset",
            "fashion-mnist",
            "--run-dir",
            str(tmp_path / "s"),
            "--max-bitops",
            "1G",
            "--set",
            "search.progress=false",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "'bitops' is not available" in err, err


def test_spaces_lists_the_quantized_spaces_with_their_sizes(capsys):
    assert main(["spaces", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["resnet18-quant"]["size"] == 18**8 and rows["resnet34-quant"]["size"] == 18**16
    assert "channels=search|joint" in rows["spos-shufflenet"]["description"]
