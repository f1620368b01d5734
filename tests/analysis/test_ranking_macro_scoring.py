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
