"""Fakes for search tests: a small space, additive fake costs, a hidden-target accuracy."""

from __future__ import annotations

import random

import pytest

from supernet.space import Arch, create_space
from tests.conftest import run_main, set_args, tiny_overrides

OP_MACS = {"e3k3": 3, "e3k5": 4, "e3k7": 5, "e6k3": 6, "e6k5": 8, "e6k7": 10, "id": 0}


def fake_costs(arch: Arch) -> dict[str, float]:
    """macs (in M units * 1e6) and params: additive per-op numbers."""
    macs = sum(OP_MACS[op] for op in arch) * 1e6
    return {"macs": macs, "params": macs / 10}


def target_accuracy(target: Arch):
    """Fake accuracy: fraction of layers matching a hidden target arch."""

    def evaluate(arch: Arch) -> dict[str, float]:
        return {"accuracy": sum(a == b for a, b in zip(arch, target)) / len(target)}

    return evaluate


@pytest.fixture(scope="session")
def small_space():
    # the narrower variant (no id where the shape changes): an all-id arch would cost 0 fake MACs,
    # and the infeasibility tests need a cheapest arch above their budget
    return create_space(
        "scarlet-s1", preset="fashion-mnist", layers_per_stage=(1, 2, 1, 1, 1, 1), identity_in="same-shape"
    )


@pytest.fixture(scope="session")
def full_space():
    return create_space("scarlet-s1")


@pytest.fixture
def rng():
    return random.Random(0)


@pytest.fixture(scope="session")
def costs():
    return fake_costs


@pytest.fixture(scope="session")
def make_target_eval():
    return target_accuracy


def tiny_train_sets(**extra) -> list[str]:
    """The overrides of the search tests' supernet (a tiny one, two training steps), plus `extra`."""
    return tiny_overrides(train__epochs=1, train__max_steps_per_epoch=2, **extra)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """That supernet, trained once per test module (a module's searches share its evaluation cache)."""
    run_dir = tmp_path_factory.mktemp("trained") / "supernet"
    r = run_main("train", "--run-dir", str(run_dir), *set_args(tiny_train_sets()))
    assert r.returncode == 0, r.stderr[-2000:]
    return run_dir


from tests.search.test_search_cli import table  # noqa: E402,F401  (the small table fixture)
