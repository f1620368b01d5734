"""The main job end to end at a tiny size: train -> search -> export -> retrain -> report."""

import json

import torch

from supernet.jobs.pipeline import EXPORT_ACCURACIES
from tests.conftest import needs_fashion, run_cli, run_main, set_args, tiny_overrides

pytestmark = needs_fashion


def test_pipeline_end_to_end_and_exported_model_reloads(tmp_path):
    run = tmp_path / "run"
    args = [
        "pipeline",
        "--run-dir",
        str(run),
        *set_args(tiny_overrides(search__max_macs="'400k'", supernet__identity="els")),
    ]
    r = run_cli(*args, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "retrained" in r.stdout and "test acc" in r.stdout
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_metrics"]["macs"] <= 400_000
    assert 0.0 <= summary["retrained"]["test_acc"] <= 1.0 and 0.0 <= summary["one_shot_test_acc"] <= 1.0
    # the exported model (trained ELS folded or kept, the path's recalibrated BN) is the supernet path's function
    assert abs(summary["exported_inherited_test_acc"] - summary["one_shot_test_acc"]) <= 5e-4
    assert json.loads((run / "export" / "model.json").read_text())["same_function_as_supernet_path"]

    from supernet.jobs.export import load_exported

    model = load_exported(run / "export").eval()
    config = json.loads((run / "export" / "model.json").read_text())
    assert config["arch"] == summary["best"]
    x = torch.randn(3, *config["input_shape"])
    assert model(x).shape == (3, config["num_classes"])
    if (run / "export" / "model.pt2").exists():  # loads with plain torch, no supernet code
        program = torch.export.load(str(run / "export" / "model.pt2"))
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-5, atol=1e-5)

    exported = {name: (run / "export" / name).stat().st_mtime_ns for name in ("model.json", "weights.pt")}
    again = run_main(*args)
    assert again.returncode == 2 and "--resume" in again.stderr  # nothing overwritten
    run_main(*args, "--resume", code=0)
    resumed = json.loads((run / "summary.json").read_text())
    assert resumed["best"] == summary["best"]
    # the finished export is kept, its accuracies read back, not measured and written again
    assert {name: (run / "export" / name).stat().st_mtime_ns for name in exported} == exported
    assert [resumed[k] for k in EXPORT_ACCURACIES] == [summary[k] for k in EXPORT_ACCURACIES]


def test_a_pipeline_resume_redoes_an_export_whose_record_does_not_fit(tmp_path):
    """A record of another arch, or one that does not read as one, is not trusted: the export is redone."""
    from supernet.jobs import pipeline
    from supernet.space import Arch

    best = Arch(("a", "b"))
    done = tmp_path / pipeline.EXPORT_DONE
    good = {"arch": "a,b", "one_shot_test_acc": 0.5, "exported_inherited_test_acc": 0.5}
    done.write_text(json.dumps(good))
    assert pipeline._finished_export(done, best) == {k: 0.5 for k in EXPORT_ACCURACIES}
    for bad in ({**good, "arch": "b,a"}, {**good, "one_shot_test_acc": 1.5}, {"arch": "a,b"}, [1, 2], "x"):
        done.write_text(json.dumps(bad))
        assert pipeline._finished_export(done, best) is None, bad
    done.write_text('{"arch": "a,b", "one_shot_test_acc": NaN, "exported_inherited_test_acc": 0.5}')
    assert pipeline._finished_export(done, best) is None
    done.write_bytes(b"\xff\xfe")
    assert pipeline._finished_export(done, best) is None


def test_pipeline_min_acc_unmet_stops_before_export(tmp_path):
    run = tmp_path / "run"
    args = ["pipeline", "--run-dir", str(run), *set_args(tiny_overrides(search__min_acc="0.999", train__epochs=1))]
    r = run_cli(*args, timeout=600)
    assert r.returncode == 2, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "accuracy >= 0.999" in errors[0] and "best accuracy found was" in errors[0]
    assert "Traceback" not in r.stderr
    assert not (run / "export").exists() and not (run / "standalone").exists()


def test_pipeline_loads_the_data_once_and_the_supernet_once_after_the_search(tmp_path, monkeypatch):
    """Issue 16: the data is loaded once and passed to every stage; after the search (which loads its own
    supernet) the checkpoint is read once for the one-shot accuracy, the export and the retraining."""
    import supernet.jobs.export as export
    import supernet.jobs.pipeline as pipeline
    import supernet.jobs.retrain as retrain
    import supernet.jobs.search as search
    import supernet.jobs.train as train
    from supernet.config.schema import load_config

    calls = {"load_data": 0, "load_supernet": 0}

    def counted(name, module):
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        return wrapper

    for module in (pipeline, search, train, export, retrain):
        for name in calls:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, counted(name, module))
    cfg = load_config(None, tiny_overrides(train__epochs=1, search__iterations=1, search__max_macs="'400k'"))
    summary = pipeline.run_pipeline(cfg, tmp_path / "run")
    assert calls == {"load_data": 1, "load_supernet": 2}  # the search's own, and the pipeline's
    assert summary["exported_inherited_test_acc"] == summary["one_shot_test_acc"]  # the very weights measured
