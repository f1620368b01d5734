import csv

import pytest

from supernet.core.errors import ConfigError, SearchError
from supernet.search import MemoEvaluator, TableEvaluator, as_metrics


class CountingEvaluator:
    def __init__(self):
        self.calls = []

    def evaluate(self, arch):
        self.calls.append(arch)
        return len(set(arch)) / len(arch)


def test_memo_evaluator_never_repeats(small_space, rng):
    inner = CountingEvaluator()
    memo = MemoEvaluator(inner)
    archs = [small_space.sample(rng) for _ in range(5)]
    assert len(set(archs)) == 5
    values = [memo.evaluate(a) for a in archs * 3]
    assert inner.calls == archs  # exactly one real call per arch
    assert memo.calls == 5
    assert values == [CountingEvaluator().evaluate(a) for a in archs] * 3
    assert as_metrics(memo)(archs[0]) == {"accuracy": values[0]}
    assert memo.calls == 5 and len(inner.calls) == 5


def _write(path, rows):
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


def test_table_evaluator_reads_accuracy_and_costs(tmp_path, small_space, rng):
    a, b = small_space.sample(rng), small_space.sample(rng)
    idx = " ".join(map(str, small_space.indices(b)))  # the papers' index form
    path = tmp_path / "t.csv"
    _write(
        path,
        [["arch", "accuracy", "macs", "params"], [a.to_string(), "0.75", "3e8", "1000"], [], [idx, "0.5", "2e8", "7"]],
    )
    table = TableEvaluator(path, small_space)
    assert len(table) == 2 and a in table and b in table
    assert table.evaluate(a) == 0.75 and table.evaluate(b) == 0.5
    assert table.costs(a) == {"macs": 3e8, "params": 1000.0}
    c = next(x for x in (small_space.sample(rng) for _ in range(100)) if x not in (a, b))
    with pytest.raises(SearchError, match=c.to_string()):
        table.evaluate(c)


@pytest.mark.parametrize(
    "row, message",
    [
        (["ARCH", "0.5"], "layer"),
        (["ARCH", "zero"], "not a number"),
        (["ARCH"], "expected 2 fields"),
        (["ARCH", "1.5"], "outside"),
        (["e3k3", "0.5"], "layers"),
    ],
)
def test_table_evaluator_malformed_row_names_line(tmp_path, small_space, rng, row, message):
    good = small_space.sample(rng).to_string()
    bad = [good if c == "ARCH" else c for c in row]
    if message == "layer":
        bad[0] = good.replace("e", "x", 1) if "e" in good else "x" + good
    path = tmp_path / "bad.csv"
    other = next(x for x in (small_space.sample(rng) for _ in range(100)) if x.to_string() != good)
    _write(path, [["arch", "accuracy"], [other.to_string(), "0.1"], bad])
    with pytest.raises(ConfigError) as e:
        TableEvaluator(path, small_space)
    text = str(e.value)
    assert f"{path}:3" in text and message in text and "\n" not in text


def test_table_evaluator_duplicate_header_and_missing(tmp_path, small_space, rng):
    a = small_space.sample(rng).to_string()
    path = tmp_path / "dup.csv"
    _write(path, [["arch", "accuracy"], [a, "0.1"], [a, "0.2"]])
    with pytest.raises(ConfigError, match=r"dup.csv:3: .*line 2"):
        TableEvaluator(path, small_space)
    _write(path, [["accuracy", "arch"], [a, "0.1"]])
    with pytest.raises(ConfigError, match=r"dup.csv:1: header"):
        TableEvaluator(path, small_space)
    path.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        TableEvaluator(path, small_space)
    with pytest.raises(ConfigError, match="cannot read"):
        TableEvaluator(tmp_path / "missing.csv", small_space)


def test_header_only_table_says_it_has_no_rows(tmp_path, small_space):
    path = tmp_path / "head.csv"
    _write(path, [["arch", "accuracy"]])
    with pytest.raises(ConfigError, match="header but no rows"):
        TableEvaluator(path, small_space)
