"""PAD-NAS pruning: frequencies and the P_th rule, bit-identical weight inheritance, SIGKILL + resume."""

import json
import os
import signal
import subprocess
import time

import pytest
import torch

from supernet.core.errors import ConfigError
from supernet.jobs.prune import counted_archs, kept_ops, network_key, op_frequencies
from supernet.model.fewshot import part_choices
from supernet.model.inherit import inherit_state
from supernet.model.supernet import Supernet, SupernetOptions
from tests.conftest import (
    cli,
    cli_env,
    needs_fashion,
    randomize_batchnorm,
    run_cli,
    tiny_overrides,
)


def test_frequencies_count_only_archs_below_the_rank_limit(tiny_space):
    a = tiny_space.from_indices([0] * tiny_space.num_layers)
    b = tiny_space.from_indices([1] * tiny_space.num_layers)
    freq = op_frequencies(tiny_space, {a.to_string(): 1, b.to_string(): 10}, max_rank=10)
    assert all(row[a.ops[i]] == 1.0 and row[b.ops[i]] == 0.0 for i, row in enumerate(freq))
    freq = op_frequencies(tiny_space, {a.to_string(): 1, b.to_string(): 9}, max_rank=10)
    assert all(row[a.ops[i]] == 0.5 for i, row in enumerate(freq))
    with pytest.raises(ConfigError, match="max_rank"):
        op_frequencies(tiny_space, {a.to_string(): 12}, max_rank=10)


def test_ops_at_or_below_the_threshold_go_but_never_a_layers_last(tiny_space):
    layer = tiny_space.layers[0]
    first, second, *_rest = layer.choices
    freq = [{op: 0.0 for op in lay.choices} for lay in tiny_space.layers]
    freq[0].update({first: 0.99, second: 0.01})
    kept = kept_ops(tiny_space, freq, threshold=0.01)
    assert kept[0] == [first]  # 0.01 is at the threshold: dropped
    assert all(k == [lay.choices[0]] for k, lay in zip(kept[1:], tiny_space.layers[1:]))  # all 0: keep one
    freq[0][second] = 0.011
    assert kept_ops(tiny_space, freq, threshold=0.01)[0] == [first, second]


def test_pruned_supernet_inherits_the_surviving_weights_bit_for_bit(tiny_space):
    torch.manual_seed(0)
    parent = randomize_batchnorm(Supernet(tiny_space, SupernetOptions("els")))
    for p in parent.parameters():
        p.data.normal_()
    kept = [list(layer.choices[1::2]) for layer in tiny_space.layers]
    pruned = tiny_space.restrict(kept)
    child = Supernet(pruned, SupernetOptions("els"))
    child.load_state_dict(inherit_state(parent.state_dict(), child))
    child.eval()
    for i, layer in enumerate(pruned.layers):
        assert sorted(child.choices[i]) == sorted(layer.choices)
        for op in layer.choices:
            for (name, a), (_, b) in zip(
                parent.choices[i][op].state_dict().items(), child.choices[i][op].state_dict().items(), strict=True
            ):
                assert torch.equal(a, b), (i, op, name)
    for part in ("stem", "head"):
        for a, b in zip(getattr(parent, part).state_dict().values(), getattr(child, part).state_dict().values()):
            assert torch.equal(a, b)
    arch = pruned.sample(__import__("random").Random(0))
    assert tiny_space.parse_arch(arch.to_string()) == arch  # a pruned arch parses in the parent space
    x = torch.randn(2, *tiny_space.input_shape)
    with torch.no_grad():
        assert torch.equal(child(x, arch), parent(x, arch))


WIDTH_SPACES = {
    "spos-shufflenet": {"preset": "fashion-mnist", "channels": "search", "layers_per_stage": (1, 1, 1, 1)},
    "resnet18-quant": {"preset": "fashion-mnist", "layers_per_stage": (1, 1, 1, 1)},
}


def _without_widest(space) -> list[list[str]]:
    """Per layer, its choices but the widest (the last scale, in these spaces' choice order) of each op."""
    from supernet.space.opnames import split_scale

    def widest(choices):
        top = max(split_scale(op)[1] for op in choices)
        return [op for op in choices if split_scale(op)[1] < top]

    return [widest(layer.choices) for layer in space.layers]


@pytest.mark.parametrize("name", sorted(WIDTH_SPACES))
@pytest.mark.parametrize("restriction", ["pruned", "few-shot part"])
def test_a_width_choice_space_restricted_inherits_the_leading_slices(name, restriction):
    from supernet.space import create_space

    torch.manual_seed(0)
    space = create_space(name, **WIDTH_SPACES[name])
    parent = randomize_batchnorm(Supernet(space, SupernetOptions()))
    for p in parent.parameters():
        p.data.normal_()
    if restriction == "pruned":
        kept = _without_widest(space)
    else:  # split on layer 1 at a narrow width: the part's shared block is built at that width
        kept = part_choices(space, [1], [space.layers[1].choices[0]])
    small = space.restrict(kept)
    child = Supernet(small, SupernetOptions())
    child.load_state_dict(inherit_state(parent.state_dict(), child))
    child.eval()
    shapes = {k: v.shape for k, v in parent.state_dict().items()}
    assert any(v.shape != shapes[k] for k, v in child.state_dict().items())  # some shared block got narrower
    x = torch.randn(2, *space.input_shape)
    rng = __import__("random").Random(0)
    for _ in range(4):
        arch = small.sample(rng)
        with torch.no_grad():
            assert torch.equal(child(x, arch), parent(x, arch)), arch


def test_an_entry_wider_than_its_parents_is_refused(tiny_space):
    from supernet.core.errors import CheckpointError

    parent = Supernet(tiny_space, SupernetOptions())
    state = parent.state_dict()
    name = next(k for k, v in state.items() if v.dim() == 4)
    state[name] = state[name][:1]
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
        inherit_state(state, Supernet(tiny_space, SupernetOptions()))


def _prune_args(run_dir) -> list[str]:
    sets = tiny_overrides(
        data__train_limit=256,
        data__val_size=64,
        eval__recal_batches=1,
        search__population=4,
        search__iterations=1,
        train__max_steps_per_epoch=2,
    )
    sets += ["prune.stages=3", "prune.epochs=[1,1]", "prune.lrs=[0.1,0.1]", "prune.threshold=0.3"]
    return ["prune", "--run-dir", str(run_dir)] + [a for s in sets for a in ("--set", s)]


WIDTH_PRUNE = {
    "spos-shufflenet": "{layers_per_stage: [1,1,1,1], channels: search}",
    "resnet18-quant": "{layers_per_stage: [1,1,1,1]}",
}


@needs_fashion
@pytest.mark.parametrize("name", sorted(WIDTH_PRUNE))
def test_prune_completes_on_a_width_choice_space(tmp_path, name):
    """Stage 2 inherits by slicing where a layer lost its widest choice (PAD-NAS on SPOS's channel search)."""
    run = tmp_path / "p"
    args = _prune_args(run)[:3] + [
        arg
        for s in ["prune.stages=3", "prune.epochs=[1,1]", "prune.lrs=[0.1,0.1]", "prune.threshold=0.5"]
        + tiny_overrides(
            space__name=name,
            space__options=WIDTH_PRUNE[name],
            data__train_limit=128,
            data__val_size=64,
            eval__recal_batches=1,
            search__population=4,
            search__iterations=1,
            train__max_steps_per_epoch=1,
        )
        for arg in ("--set", s)
    ]
    run_cli(*args, code=0, timeout=600)
    stages = json.loads((run / "prune.json").read_text())["stages"]
    before, after = (row["choices"] for row in stages)
    assert any(kept[-1] != choices[-1] for kept, choices in zip(after, before))  # a widest choice went


@needs_fashion
def test_prune_killed_between_stages_resumes_in_its_stage(tmp_path):
    run = tmp_path / "p"
    proc = subprocess.Popen(
        cli(*_prune_args(run)),
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while not (run / "prune.json").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # stage 1 is done (prune.json lists it), stage 2 has begun or not
    proc.wait()
    assert json.loads((run / "prune.json").read_text())["stages"][0]["stage"] == 1
    stage1 = (run / "stage-1" / "checkpoints" / "last.pt").read_bytes()
    again = run_cli(*_prune_args(run), timeout=300)
    assert again.returncode == 2 and "--resume" in again.stderr  # a second run never overwrites the first
    done = run_cli(*_prune_args(run), "--resume", timeout=600)
    assert done.returncode == 0, done.stderr
    assert (run / "stage-1" / "checkpoints" / "last.pt").read_bytes() == stage1  # stage 1 was not retrained
    summary = json.loads((run / "prune.json").read_text())
    assert [row["stage"] for row in summary["stages"]] == [1, 2]
    pruning = json.loads((run / "stage-2" / "pruning.json").read_text())
    assert summary["stages"][1]["choices"] == pruning["kept"] and summary["stages"][1]["size"] == pruning["size"]
    assert (run / "stage-2" / "frequencies.png").exists() and (run / "space-size.png").exists()
    from supernet.runs.load import load_supernet

    net, meta = load_supernet(run / "stage-2")
    assert meta["space_choices"] == pruning["kept"]
    assert net.space.parse_arch(summary["final"]["best"])  # the final arch lies in the pruned space
    from supernet.analysis.report import build_report

    page = build_report(run).read_text()
    assert "progressive pruning" in page and "op frequency per layer (PAD-NAS Fig. 3)" in page
    assert "search space size per stage" in page


def test_cifar10_macro_prune_config_trains_four_epochs_in_a_reachable_window():
    from pathlib import Path

    from supernet.config.schema import load_config
    from supernet.cost import CostTable
    from supernet.cost.units import parse_quantity
    from supernet.jobs.prune import stage_epochs
    from supernet.space import create_space

    cfg = load_config(Path(__file__).parents[2] / "configs" / "padnas-cifar10-nas-bench-macro.yaml")
    stages = [stage_epochs(cfg, k) for k in range(cfg.prune.stages - 1)]
    assert sum(epochs for epochs, _ in stages) == 4 and all(lr == 0.025 for _, lr in stages)
    assert cfg.train.warmup_steps > 0 and cfg.supernet.interchoice == "none"
    space = create_space(cfg.space.name, preset=cfg.space.preset)
    low, high = CostTable.build(space).range("macs")
    assert low < parse_quantity(cfg.search.min_macs) < parse_quantity(cfg.search.max_macs) < high


def _tree(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _no_training(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a refused resume must not train")

    monkeypatch.setattr("supernet.jobs.train.train_supernet", refuse)


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        (["prune.threshold=0.5"], ["prune.threshold: 0.3 -> 0.5"]),
        (
            ["prune.stages=4", "prune.epochs=[1,1,1]", "prune.lrs=[0.1,0.1,0.1]"],
            ["prune.stages: 3 -> 4", "prune.epochs"],
        ),
        (["prune.lrs=[0.1,0.2]", "prune.max_rank=5"], ["prune.lrs", "prune.max_rank: 10 -> 5"]),
    ],
)
def test_prune_resume_with_changed_prune_settings_is_refused_touching_nothing(tmp_path, monkeypatch, changed, named):
    from supernet.config.schema import load_config
    from supernet.jobs.prune import prune_settings
    from tests.conftest import assert_one_line_error, run_main

    run = tmp_path / "p"
    (run / "stage-1").mkdir(parents=True)
    args = _prune_args(run)
    recorded = prune_settings(load_config(None, [a for a in args[3:] if a != "--set"]))
    summary = {"stages": [{"stage": 1}], "threshold": 0.3, "max_rank": 10, "settings": recorded}
    (run / "prune.json").write_text(json.dumps(summary))
    before = _tree(run)
    _no_training(monkeypatch)
    result = run_main(*args, *[a for s in changed for a in ("--set", s)], "--resume")
    assert_one_line_error(result, "cannot resume", *named)
    assert _tree(run) == before


def test_prune_resume_of_a_summary_without_settings_still_checks_threshold_and_max_rank(tmp_path, monkeypatch):
    from tests.conftest import assert_one_line_error, run_main

    run = tmp_path / "p"
    (run / "stage-1").mkdir(parents=True)
    (run / "prune.json").write_text(json.dumps({"stages": [{"stage": 1}], "threshold": 0.3, "max_rank": 10}))
    before = _tree(run)
    _no_training(monkeypatch)
    result = run_main(*_prune_args(run), "--set", "prune.threshold=0.2", "--resume")
    assert_one_line_error(result, "prune.threshold: 0.3 -> 0.2")
    assert _tree(run) == before


def test_prune_resume_with_the_recorded_settings_goes_on_to_train(tmp_path, monkeypatch):
    from supernet.config.schema import load_config
    from supernet.jobs.prune import prune_settings, run_prune

    run = tmp_path / "p"
    (run / "stage-1").mkdir(parents=True)
    cfg = load_config(None, [a for a in _prune_args(run)[3:] if a != "--set"])
    (run / "prune.json").write_text(json.dumps({"stages": [], "settings": prune_settings(cfg)}))

    class Trained(Exception):
        pass

    def train(*args, **kwargs):
        raise Trained

    monkeypatch.setattr("supernet.jobs.train.train_supernet", train)
    with pytest.raises(Trained):
        run_prune(cfg, run, resume=True)


def _macro():
    from supernet.space import create_space

    return create_space("nas-bench-macro", width=0.125, resolution=16, head_channels=32)


def test_a_network_counts_once_however_many_spellings_ranked():
    space = _macro()  # stages [0, 1], [2, 3, 4], [5, 6, 7]
    spellings = ["10201201", "10210210", "10201210"]  # one network, three spellings
    other = "22222222"
    ranks = {**{space.format_arch(space.parse_arch(t)): 0 for t in spellings}, other: 0}
    net = Supernet(space, SupernetOptions())
    freq = op_frequencies(space, ranks, max_rank=10, network=network_key(net))
    assert freq[0] == {"id": 0.0, "e3k3": 0.5, "e6k5": 0.5}  # two networks: each counts one half
    assert freq[0] != op_frequencies(space, ranks, max_rank=10)[0]  # spelling by spelling: 3/4 for e3k3
    assert len(counted_archs(space, ranks, 10, network_key(net))) == 2
    assert network_key(Supernet(space, SupernetOptions(identity="els"))) is None  # ELS: spellings differ


def test_canonical_supernet_refuses_a_space_not_closed_under_the_move():
    space = _macro()
    kept = [list(layer.choices) for layer in space.layers]
    kept[3], kept[4] = ["id", "e3k3"], ["e6k5"]  # id,e3k3 | e6k5: e6k5 would move into layer 3
    pruned = space.restrict(kept)
    with pytest.raises(ConfigError, match="supernet.canonical.*e6k5"):
        Supernet(pruned, SupernetOptions(canonical=True))
    Supernet(pruned, SupernetOptions())  # without the move it is an ordinary space
    kept[3], kept[4] = list(space.layers[3].choices), ["id", "e3k3"]
    Supernet(space.restrict(kept), SupernetOptions(canonical=True))  # closed: accepted


def test_closure_check_agrees_with_enumeration():
    import itertools
    import random

    space, rng = _macro(), random.Random(0)
    for _ in range(60):
        sub = space.restrict([rng.sample(layer.choices, rng.randint(1, 3)) for layer in space.layers])
        archs = (sub.from_indices(ix) for ix in itertools.product(*[range(len(la.choices)) for la in sub.layers]))
        closed = all(sub.contains(sub.canonical(a)) for a in archs)
        outside = sub.canonical_outside()
        assert (outside is None) == closed
        assert outside is None or (sub.contains(outside) and not sub.contains(sub.canonical(outside)))


def _fake_ces_result(space) -> dict:
    """A CES result whose final population chose only each layer's first op, while the archive
    (every evaluated arch) holds as many archs of each layer's second op."""
    first = space.from_indices([0] * space.num_layers).to_string()
    seconds = [space.from_indices([1] * space.num_layers).to_string()]
    seconds += [space.from_indices([1] * (space.num_layers - 1) + [0]).to_string()]
    return {
        "ranks": {first: 1, seconds[0]: 2, seconds[1]: 3},
        "population_ranks": {first: 1},
        "best": first,
    }


@pytest.mark.parametrize("source, counted, second_share", [("population", 1, 0.0), ("archive", 3, 2 / 3)])
def test_prune_counts_the_final_ces_population_by_default(
    tiny_space, tmp_path, monkeypatch, source, counted, second_share
):
    from supernet.config.schema import load_config
    from supernet.jobs import prune

    overrides = [] if source == "population" else [f"prune.frequency_from={source}"]
    cfg = load_config(overrides=overrides)
    monkeypatch.setattr(prune, "_search", lambda *a: _fake_ces_result(tiny_space))
    monkeypatch.setattr("supernet.runs.load.load_supernet", lambda d: (Supernet(tiny_space, SupernetOptions()), {}))
    monkeypatch.setattr(prune, "_plot_frequencies", lambda *a: None)
    out = prune._prune_step(cfg, tmp_path / "parent", tmp_path / "stage-2")
    assert out["archs_counted"] == counted and out["frequency_from"] == source
    assert out["frequencies"][0][tiny_space.layers[0].choices[1]] == pytest.approx(second_share)


def test_prune_frequency_source_is_checked():
    from supernet.config.schema import load_config

    with pytest.raises(ConfigError, match="prune.frequency_from must be one of population, archive, got 'final'"):
        load_config(overrides=["prune.frequency_from=final"])
