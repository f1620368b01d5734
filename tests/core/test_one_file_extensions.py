"""Issue 27.2: a strategy or a sampler with an option of its own is one file, run from the CLI with
`--import FILE --set search.options.NAME=VALUE` (`train.sampler_options.NAME`); an option it does not have is
refused, never ignored."""

import csv
import json

from tests.conftest import assert_one_line_error, needs_fashion, run_cli, search_options, set_args, tiny_overrides

STRATEGY = """
import dataclasses, random
from dataclasses import dataclass
from supernet.core.ranges import AT_LEAST_1, check_fields, register_rules
from supernet.search import StrategySpec, register_strategy
from supernet.search.random_search import RandomSearch, RandomSearchConfig


@dataclass(frozen=True)
class LuckyConfig(RandomSearchConfig):
    lucky: int = 3  # archs drawn: `lucky` times the batch size below

    def __post_init__(self):
        check_fields(self, "search.options")


register_rules(LuckyConfig, {"lucky": AT_LEAST_1})


def lucky(space, problem, costs, rng, config):
    settings = {f.name: getattr(config, f.name) for f in dataclasses.fields(RandomSearchConfig)}
    return RandomSearch(space, problem, costs, rng, RandomSearchConfig(**{**settings, "num_samples": config.lucky}))


register_strategy("lucky", StrategySpec(lucky, LuckyConfig))
"""

SAMPLER = """
from dataclasses import dataclass
from supernet.core.ranges import PROBABILITY, check_fields, register_rules
from supernet.space import Arch
from supernet.train.sampler import SamplerSpec, register_sampler


@dataclass(frozen=True)
class FirstOptions:
    share: float = 1.0  # the probability of the first choice in every layer

    def __post_init__(self):
        check_fields(self, "train.sampler_options")


register_rules(FirstOptions, {"share": PROBABILITY})


class FirstSampler:
    name = "first"

    def __init__(self, space, share):
        self.space, self.share = space, share

    def paths(self, rng):
        layers = self.space.layers
        return [Arch(tuple(l.choices[0] if rng.random() < self.share else rng.choice(l.choices) for l in layers))]


register_sampler("first", SamplerSpec(lambda space, identity, o: FirstSampler(space, o.share), FirstOptions))
"""


SPACE = ("--space", "scarlet-s1", "--preset", "fashion-mnist", "--option", "layers_per_stage=[1,1,1,1,1,1]")


def _table(tmp_path):
    """Every arch of a six-layer space with a made-up accuracy."""
    import itertools

    from supernet.space import create_space

    space = create_space("scarlet-s1", preset="fashion-mnist", layers_per_stage=(1, 1, 1, 1, 1, 1))
    path = tmp_path / "t.csv"
    with path.open("w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["arch", "accuracy"])
        for n, indices in enumerate(itertools.product(*[range(len(layer.choices)) for layer in space.layers])):
            rows.writerow([space.from_indices(indices).to_string(), f"{(n % 97) / 100:.2f}"])
    return path


def test_a_strategy_with_its_own_option_is_one_file(tmp_path):
    plugin = tmp_path / "lucky.py"
    plugin.write_text(STRATEGY)
    table = _table(tmp_path)
    args = ["--import", str(plugin), "search", "--table", str(table), *SPACE, "--strategy", "lucky"]
    run_cli(*args, "--run-dir", str(tmp_path / "s"), "--set", "search.options.lucky=5", code=0)
    assert json.loads((tmp_path / "s" / "result.json").read_text())["evaluations"] == 5
    r = run_cli(*args, "--run-dir", str(tmp_path / "t"), "--set", "search.options.unlucky=5")
    assert_one_line_error(r, "unknown config field 'search.options.unlucky'")
    r = run_cli(*args, "--run-dir", str(tmp_path / "u"), "--set", "search.options.lucky=0")
    assert_one_line_error(r, "config field 'search.options.lucky' must be >= 1, got 0")


def test_an_option_the_chosen_strategy_lacks_is_refused_not_ignored(tmp_path):
    table = _table(tmp_path)
    args = ["search", "--table", str(table), *SPACE, "--run-dir", str(tmp_path / "s")]
    r = run_cli(*args, "--strategy", "evolution", "--set", "search.options.num_samples=5")
    assert_one_line_error(r, "unknown config field 'search.options.num_samples'; known: ")
    r = run_cli(*args, "--set", "search.population=5")
    assert_one_line_error(
        r, "'search.population' is now the strategy's or sampler's own option: search.options.population"
    )
    assert not (tmp_path / "s").exists()
    run_cli(*args, "--strategy", "random", "--set", search_options("random", samples=5), code=0)


@needs_fashion
def test_a_sampler_with_its_own_option_is_one_file(tmp_path):
    plugin = tmp_path / "first.py"
    plugin.write_text(SAMPLER)
    sets = set_args(tiny_overrides(train__epochs=1, train__sampler="first", train__max_steps_per_epoch=3))
    run = tmp_path / "run"
    run_cli(
        "--import",
        str(plugin),
        "train",
        "--run-dir",
        str(run),
        *sets,
        "--set",
        "train.sampler_options.share=1.0",
        code=0,
    )
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    paths = {p for row in steps if row.get("type") == "step" for p in row["paths"]}
    assert len(paths) == 1 and next(iter(paths)).startswith("e3k3")  # share 1: the first choice everywhere
    r = run_cli(
        "--import",
        str(plugin),
        "train",
        "--run-dir",
        str(tmp_path / "r2"),
        *sets,
        "--set",
        "train.sampler_options.share=2",
    )
    assert_one_line_error(r, "config field 'train.sampler_options.share' must be >= 0 and <= 1, got 2")
