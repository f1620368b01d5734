"""benchmarks/ranking_macro.py --score-by: a training arm scored by exp(-loss) gets `eval.metric=loss` and a
score file of its own (before the switch, training arms were scored by accuracy only, so they could not be
compared with the shipped config's loss score)."""

import importlib.util
import sys

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("ranking_macro", REPO / "benchmarks" / "ranking_macro.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_a_training_arm_scored_by_loss_evaluates_the_loss_into_its_own_file(study):
    arm = study.ARMS["wd-5e-4"]
    size = study.SIZES["quick"]
    by_loss = study.arm_config(size, "/data", arm, 0, "loss")
    by_acc = study.arm_config(size, "/data", arm, 0)
    assert by_loss.eval.metric == "loss" and by_acc.eval.metric == "accuracy"
    assert by_loss.train.weight_decay == by_acc.train.weight_decay == 5e-4
    assert arm.score_file("loss") == "score-default-loss.json" != arm.score_file("accuracy")


def test_an_arm_that_scores_by_loss_itself_keeps_its_file(study):
    arm = study.ARMS["twins-mean-loss"]
    assert arm.score_file("loss") == arm.score_file("accuracy") == "score-twins-mean-loss.json"
    assert study.arm_config(study.SIZES["quick"], "/data", arm, 0, "loss").eval.metric == "loss"


def _args(**changes):
    import argparse

    base = dict(size="w1", quick=False, smoke=False, budget=None, width=None, max_per_class=None, epochs=None)
    return argparse.Namespace(**{**base, **changes})


def test_all_training_images_reach_the_config_and_the_epoch_budget(study):
    """--max-per-class 5000 (the top of the budget curve: all 48,000 non-validation images of CIFAR-10) changes
    the data the arm reads and what one epoch of `--epochs` is; the study's own size is left as it was."""
    every_image = study.study_size(_args(max_per_class=5000, epochs=2))
    assert every_image["max_per_class"] == 5000 and every_image["budget"] == 2 * 48_000 // 128
    assert study.study_size(_args(epochs=2))["budget"] == 2 * 28_000 // 128
    assert study.SIZES["w1"]["max_per_class"] == 3000
    cfg = study.arm_config(every_image, "/data", study.ARMS["deep-first"], 0, "loss")
    assert cfg.data.max_per_class == 5000 and cfg.data.val_size == 2000


def test_the_shipped_macro_config_trains_and_scores_as_the_measured_deep_first_arm(study):
    """configs/cifar10-nas-bench-macro.yaml ships what docs/analysis.md measured (rounds 8-10): the `deep-first` arm
    of the w1 size scored by loss, with the `pairs` predictor (ridges 5 and 100) for the search. A change to either
    side fails here."""
    from dataclasses import asdict

    from supernet.config.schema import load_config

    shipped = load_config(REPO / "configs" / "cifar10-nas-bench-macro.yaml", ["data.root=/data"])
    measured = study.arm_config(study.study_size(_args(epochs=16)), "/data", study.ARMS["deep-first"], 0, "loss")
    same = {
        "supernet": ("identity", "canonical", "zero_init_residual", "bn_affine", "interchoice"),
        "train": ("sampler", "sampler_options", "lr", "batch_size", "schedule", "warmup_steps", "weight_decay"),
        "eval": ("recal_batches", "recal_batch_size", "metric", "bn", "twins"),
        "data": ("max_per_class", "resolution"),
    }
    for section, keys in same.items():
        for key in keys:
            assert getattr(getattr(shipped, section), key) == getattr(getattr(measured, section), key), (section, key)
    assert shipped.data.val_size == measured.data.val_size == 2000
    assert asdict(shipped.space) == {**asdict(measured.space), "options": {}}
    assert measured.space.options == {"width": 1.0}  # the preset's own width
    # 16 epochs: the study's 3,502 steps (17 x 206) against the config's 16 x 219 = 3,504 (the split rounds)
    assert abs(shipped.train.epochs * 28_000 / 128 - 3502) < 20
    search = shipped.search
    assert (search.predictor, search.predictor_ridge, search.predictor_pair_ridge) == ("pairs", 5.0, 100.0)
