"""Few-shot supernets (Zhao et al., ICML 2021): train.few_shot_layers / few_shot_epochs, and every verb on the
run directory scoring each arch on its own part."""

import json
import random

import pytest
import torch

from supernet.config.schema import load_config
from supernet.core.errors import CheckpointError, ConfigError
from supernet.model.fewshot import FewShotSupernet, check_few_shot_layers, few_shot_parts
from supernet.runs.load import checkpoint_digest, load_supernet
from supernet.space import create_space
from tests.conftest import assert_one_line_error, run_cli, set_args, tiny_overrides


def _overrides(**extra):
    return tiny_overrides(
        **{
            "space__options": "{width: 0.25, head_channels: 32, layers_per_stage: [1,1,1,1,1,1], stem_stride: 2}",
            "train__epochs": 1,
            "train__few_shot_layers": "[1]",
            "train__few_shot_epochs": 1,
            **extra,
        }
    )


@pytest.fixture(scope="module")
def few_shot_run(tmp_path_factory):
    from supernet.jobs.train import train_supernet

    run = tmp_path_factory.mktemp("fewshot") / "run"
    out = train_supernet(load_config(None, _overrides()), run)
    return run, out


def test_one_part_per_choice_each_starting_from_the_one_shot_weights(few_shot_run):
    run, out = few_shot_run
    one_shot = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    net, meta = load_supernet(run)
    assert isinstance(net, FewShotSupernet) and meta["few_shot"]["layers"] == [1]
    ops = net.space.layers[1].choices
    assert [tuple(p["ops"]) for p in out["few_shot"]] == [(op,) for op in ops]
    for (key,), part in zip(net.keys, net.parts):
        assert part.space.layers[1].choices == (key,)
        assert net.space.layers[0].choices == part.space.layers[0].choices
        metrics = (run / "few-shot" / f"part-{ops.index(key)}" / "metrics.jsonl").read_text().splitlines()
        paths = [p for row in map(json.loads, metrics) if row["type"] == "step" for p in row["paths"]]
        assert paths and all(p.split(",")[1] == key for p in paths)  # each part trains its own archs only
    assert one_shot is not None


def test_each_arch_runs_on_its_own_part(few_shot_run):
    run, _ = few_shot_run
    net, _ = load_supernet(run)
    x = torch.randn(2, *net.space.input_shape)
    rng = random.Random(0)
    with torch.no_grad():
        for _ in range(4):
            arch = net.space.sample(rng)
            part = net.parts[net.keys.index((arch[1],))]
            assert torch.equal(net(x, arch), part(x, arch))
            assert torch.allclose(net.export(arch).eval()(x), net(x, arch), atol=1e-5)
    plain, _ = load_supernet(run / "checkpoints" / "last.pt")  # a checkpoint file: the one-shot supernet
    assert not isinstance(plain, FewShotSupernet)
    assert checkpoint_digest(run) != checkpoint_digest(run / "checkpoints" / "last.pt")


def test_search_and_prediction_on_the_run_directory_agree(few_shot_run, tmp_path):
    run, _ = few_shot_run
    from supernet.jobs.rank import predict

    run_cli("search", "--supernet", str(run), "--run-dir", str(tmp_path / "s"), *set_args(_overrides()), code=0)
    result = json.loads((tmp_path / "s" / "result.json").read_text())
    cfg = load_config(None, _overrides())
    assert predict(cfg, run, [result["best"]]) == [result["best_metrics"]["accuracy"]]


def test_a_tampered_manifest_is_one_line(few_shot_run, tmp_path):
    import shutil

    run, _ = few_shot_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    manifest = copy / "few-shot" / "few-shot.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "parts": data["parts"][:-1]}))
    with pytest.raises(CheckpointError, match="do not cover"):
        load_supernet(copy)
    manifest.write_text(json.dumps({**data, "parts": [{"ops": ["x"], "dir": "../../etc"}]}))
    with pytest.raises(CheckpointError, match="not a few-shot manifest"):
        load_supernet(copy)
    r = run_cli("export", "--supernet", str(copy), "--arch", "0,0,0,0,0,0", "--out", str(tmp_path / "e"), code=2)
    assert_one_line_error(r, "few-shot manifest")


def test_few_shot_layers_are_checked():
    space = create_space("nas-bench-macro", width=0.125, resolution=16, head_channels=32)
    assert len(few_shot_parts(space, [0, 2])) == 9
    check_few_shot_layers(space, [0, 2, 5], canonical=True)  # stage starts stay put
    with pytest.raises(ConfigError, match="stage's first layer"):
        check_few_shot_layers(space, [1], canonical=True)
    with pytest.raises(ConfigError, match="distinct layer indices"):
        check_few_shot_layers(space, [8], canonical=False)
    with pytest.raises(ConfigError, match="few_shot_epochs"):
        load_config(None, ["train.few_shot_epochs=0"])


@pytest.mark.parametrize(
    ("epochs", "set_epochs", "expected"), [(8, None, 4), (7, None, 4), (5, None, 3), (1, None, 1), (8, 3, 3)]
)
def test_parts_default_to_zhao_et_als_fine_tuning_schedule(epochs, set_epochs, expected):
    """Issue 28.12: a part trained one epoch whatever the one-shot training; the authors' code fine-tunes each
    sub-supernet half the one-shot epochs (300 of 600), a new schedule at the same lr without warm-up."""
    from supernet.jobs.few_shot import part_config

    sets = [f"train.epochs={epochs}", "train.lr=0.2", "train.warmup_epochs=1", "train.few_shot_layers=[1]"]
    if set_epochs is not None:
        sets.append(f"train.few_shot_epochs={set_epochs}")
    cfg = load_config(None, sets)
    part = part_config(cfg).train
    assert part.epochs == expected and part.lr == 0.2 and part.schedule == cfg.train.schedule
    assert (part.warmup_epochs, part.warmup_steps, part.few_shot_layers) == (0.0, 0, [])
    assert part_config(load_config(None, [*sets, "train.few_shot_lr=0.05"])).train.lr == 0.05


@pytest.mark.parametrize("layers", ["[8]", "[-1]", "[1,1]", "[a]", "[1.0]", "[true]", "[0,1,2]"])
def test_a_bad_split_is_refused_before_the_first_step(tmp_path, layers):
    from tests.conftest import run_main

    run = tmp_path / "run"
    r = run_main("train", "--run-dir", str(run), *set_args(_overrides(train__few_shot_layers=layers)))
    assert_one_line_error(r, "train.few_shot_layers")
    assert not (run / "checkpoints").exists() and not (run / "config.yaml").exists()  # nothing trained or recorded


def test_the_part_count_is_said_and_bounded(caplog):
    caplog.set_level("INFO", logger="supernet")
    from supernet.jobs.train import _announce_few_shot

    space = create_space("nas-bench-macro", width=0.125, resolution=16, head_channels=32)
    assert check_few_shot_layers(space, [0, 2], canonical=False, max_parts=9) == 9
    with pytest.raises(ConfigError, match="into 27 parts.*few_shot_max_parts=26"):
        check_few_shot_layers(space, [0, 1, 2], canonical=False, max_parts=26)
    cfg = load_config(None, ["train.few_shot_layers=[0,1,2]", "train.few_shot_max_parts=27"])  # forced
    _announce_few_shot(cfg, space)
    assert "into 27 parts" in caplog.text
    with pytest.raises(ConfigError, match="few_shot_max_parts"):
        load_config(None, ["train.few_shot_max_parts=0"])


def _copy_run(run, tmp_path, strip_digests=False):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True)
    manifest = copy / "few-shot" / "few-shot.json"
    data = json.loads(manifest.read_text())
    if strip_digests:  # a manifest written before parts recorded their digest
        data["parts"] = [{k: v for k, v in p.items() if k != "digest"} for p in data["parts"]]
        manifest.write_text(json.dumps(data))
    return copy, manifest, data


def test_the_manifest_records_each_parts_digest(few_shot_run, tmp_path):
    run, _ = few_shot_run
    copy, _, data = _copy_run(run, tmp_path)
    assert all(len(p["digest"]) == 16 for p in data["parts"])
    part0, part1 = copy / "few-shot" / "part-0", copy / "few-shot" / "part-1"
    (part0 / "checkpoints" / "last.pt").write_bytes((part1 / "checkpoints" / "last.pt").read_bytes())
    with pytest.raises(CheckpointError, match="part-0 .*digest differs"):
        load_supernet(copy)


@pytest.mark.parametrize("tamper", ["swap", "one-shot", "link", "no-layers"])
def test_parts_that_do_not_match_the_manifest_are_one_line(few_shot_run, tmp_path, tamper):
    from tests.conftest import run_main

    run, _ = few_shot_run
    copy, manifest, data = _copy_run(run, tmp_path, strip_digests=True)
    parts = copy / "few-shot"
    if tamper == "swap":
        (parts / "part-0").rename(parts / "tmp")
        (parts / "part-1").rename(parts / "part-0")
        (parts / "tmp").rename(parts / "part-1")
        expected = "another space"
    elif tamper == "one-shot":
        (parts / "part-0" / "checkpoints" / "last.pt").write_bytes((copy / "checkpoints" / "last.pt").read_bytes())
        expected = "another space"
    elif tamper == "link":
        outside = tmp_path / "outside"
        (parts / "part-1").rename(outside)
        (parts / "part-1").symlink_to(outside, target_is_directory=True)
        expected = "links are not followed"
    else:
        manifest.write_text(json.dumps({**data, "layers": [], "parts": [{"ops": [], "dir": "part-0"}]}))
        expected = "not a few-shot manifest"
    with pytest.raises(CheckpointError, match=expected):
        load_supernet(copy)
    r = run_main("export", "--supernet", str(copy), "--arch", "0,0,0,0,0,0", "--out", str(tmp_path / "e"))
    assert_one_line_error(r, expected)


def test_similarity_runs_each_candidate_on_its_own_part(few_shot_run, tmp_path):
    from supernet.analysis.similarity import candidate_features
    from supernet.space import Arch
    from tests.conftest import run_main

    run, _ = few_shot_run
    r = run_main("similarity", "--supernet", str(run), "--layer", "0", "--run-dir", str(tmp_path / "sim"))
    assert r.returncode == 0, r.stderr
    assert len(json.loads((tmp_path / "sim" / "similarity.json").read_text())["ops"]) == 7
    net, _ = load_supernet(run)
    x = torch.randn(4, *net.space.input_shape)
    prefix = Arch(tuple(layer.choices[0] for layer in net.space.layers))
    feats = candidate_features(net, 1, x, prefix, batch_stats=False)  # the split layer: one part per candidate
    for op, feat in zip(net.space.layers[1].choices, feats):
        part = net.parts[net.keys.index((op,))]
        with torch.no_grad():
            expected = part.run_layer(1, prefix.replace(1, op).ops, part.run_layer(0, prefix.ops, part.stem(x)))
        assert torch.equal(feat, expected)


def test_an_unfinished_split_says_it_uses_the_one_shot_weights(few_shot_run, tmp_path, caplog):
    caplog.set_level("INFO", logger="supernet")
    from tests.conftest import run_main

    run, _ = few_shot_run
    copy, manifest, _ = _copy_run(run, tmp_path)
    manifest.unlink()  # as if the parts were still training
    net, _ = load_supernet(copy)
    assert not isinstance(net, FewShotSupernet)
    assert "few-shot split is not finished" in caplog.text
    r = run_main("search", "--supernet", str(copy), "--run-dir", str(tmp_path / "s"), *set_args(_overrides()))
    assert r.returncode == 0 and "using the one-shot supernet's weights" in r.stderr, r.stderr
