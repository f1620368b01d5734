"""The Python API refuses bad values before any work, in one line naming the argument and the allowed range,
from the same rules table as the config (issue 29)."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import supernet
from supernet.core.errors import ConfigError, SpaceError, SupernetError


class Conv(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int, kernel: int = 3):
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class WrongChannels(nn.Module):
    """Expects 3 input channels whatever it is given."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(3, cout, 3, stride, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class IgnoresStride(nn.Module):
    """Keeps the spatial size although the layer has stride 2."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text and isinstance(e.value, SupernetError), text
    return text


def small_space(*layers: supernet.LayerChoice) -> supernet.SearchSpace:
    layers = layers or (supernet.LayerChoice([Conv, "id"], 8), supernet.LayerChoice([Conv, "id"]))
    return supernet.module_space(list(layers), input_shape=(1, 8, 8), num_classes=4, stem_channels=4)


def data(n: int = 16, classes: int = 4) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, classes, (n,), generator=g))


@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("epochs", 0, "epochs must be >= 1, got 0"),
        ("epochs", -1, "epochs must be >= 1"),
        ("epochs", 1.5, "epochs must be an int >= 1"),
        ("epochs", "2", "epochs must be an int >= 1"),
        ("lr", 0, "lr must be > 0"),
        ("grad_clip", -1, "grad_clip must be > 0 or None"),
        ("warmup_steps", -5, "warmup_steps must be >= 0"),
        ("label_smoothing", 1.5, "label_smoothing must be >= 0 and < 1"),
        ("warmup_epochs", math.nan, "warmup_epochs must be >= 0"),
        ("batch_size", True, "batch_size must be an int >= 1"),
    ],
)
def test_fit_applies_the_config_ranges(option, value, expected):
    net = supernet.build_supernet(small_space())
    with pytest.raises(ConfigError) as e:
        supernet.fit(net, data(), **{option: value})
    assert one_line(e).startswith("fit(): ") and expected in str(e.value)


@pytest.mark.parametrize(
    "layer, expected",
    [
        (dict(channels=0), "LayerChoice 0: channels must be >= 1 or None, got 0"),
        (dict(channels=-3), "channels must be >= 1"),
        (dict(channels=2.5), "channels must be an int >= 1"),
        (dict(stride=0), "LayerChoice 0: stride must be >= 1, got 0"),
    ],
)
def test_layer_choice_numbers_are_range_checked(layer, expected):
    with pytest.raises(ConfigError) as e:
        small_space(supernet.LayerChoice([Conv, "id"], **layer))
    assert expected in one_line(e)


@pytest.mark.parametrize("num_classes", [0, -1, 2.0])
def test_num_classes_is_range_checked(num_classes):
    with pytest.raises(ConfigError, match="num_classes must be"):
        supernet.module_space([supernet.LayerChoice([Conv])], (1, 8, 8), num_classes)


def test_build_supernet_options_are_range_checked():
    with pytest.raises(ConfigError, match=r"build_supernet\(\): interchoice_depth must be >= 1"):
        supernet.build_supernet(small_space(), interchoice_depth=0)


def test_a_wrong_channel_candidate_is_named_at_build():
    space = small_space(supernet.LayerChoice([Conv, "id"], 8), supernet.LayerChoice([Conv, WrongChannels]))
    with pytest.raises(SpaceError) as e:
        supernet.build_supernet(space)
    assert "layer 1 candidate 'wrongchannels' fails on its input of shape (8, 8, 8)" in one_line(e)


def test_a_candidate_that_changes_the_shape_is_named_at_build():
    space = small_space(supernet.LayerChoice([Conv, IgnoresStride], 8, stride=2))
    with pytest.raises(SpaceError) as e:
        supernet.build_supernet(space)
    assert "layer 0 candidate 'ignoresstride' gives shape (8, 8, 8), candidate 'conv' gives (8, 4, 4)" in one_line(e)


def test_the_shape_check_leaves_the_supernet_as_built():
    net = supernet.build_supernet(small_space())
    assert net.training
    stats = [b.clone() for b in net.buffers()]
    fresh = supernet.build_supernet(small_space())  # built after the same checks: BN statistics untouched
    assert all(torch.equal(a, b) for a, b in zip(stats, fresh.buffers()))
    assert all(torch.equal(b, torch.zeros_like(b)) for n, b in net.named_buffers() if n.endswith("running_mean"))


# issue 29.7: ask/tell


def asked(bounds: object = ()) -> tuple[supernet.Strategy, list]:
    strategy = supernet.make_strategy(small_space(), "evolution", bounds=bounds, population=2, iterations=1)
    return strategy, strategy.ask()


@pytest.mark.parametrize(
    "accuracy, expected",
    [
        (math.nan, "metric 'accuracy' must be a finite number, got nan"),
        (7, "accuracy must be in [0, 1], got 7"),
        (-0.1, "accuracy must be in [0, 1], got -0.1"),
        ("0.5", "metric 'accuracy' must be a number, got '0.5' (str)"),
        (True, "metric 'accuracy' must be a number, got True (bool)"),
    ],
)
def test_tell_refuses_what_is_not_an_accuracy(accuracy, expected):
    strategy, archs = asked()
    with pytest.raises(supernet.SupernetError) as e:
        strategy.tell([(arch, {"accuracy": accuracy}) for arch in archs])
    assert one_line(e).startswith("tell(): arch ") and expected in str(e.value)
    strategy.tell([(arch, {"accuracy": 0.5}) for arch in archs])  # the refused tell left the ask pending
    assert strategy.result().best_metrics["accuracy"] == 0.5


@pytest.mark.parametrize("min_acc", [math.nan, 1.5, -1, "0.5"])
def test_min_acc_is_checked_before_the_search(min_acc):
    evaluated = []
    with pytest.raises(ConfigError) as e:
        supernet.search_arch(small_space(), evaluate=lambda a: evaluated.append(a) or 0.5, min_acc=min_acc)
    assert "constraints(): min_acc must be" in one_line(e) and "<= 1" in str(e.value) and not evaluated


def test_make_strategy_bounds_are_constraints_or_their_keywords():
    strategy, _ = asked({"max_macs": "700K"})
    assert [c.metric for c in strategy.problem.constraints] == ["macs"]
    with pytest.raises(ConfigError) as e:
        asked({"max_mac": "700K"})
    assert "bounds has no key 'max_mac'; keys: max_macs" in one_line(e)
    with pytest.raises(ConfigError, match="bounds must hold Constraints"):
        asked(["max_macs"])
    with pytest.raises(ConfigError, match="bounds must be supernet.constraints"):
        asked("max_macs=700K")


def test_an_empty_validation_set_is_refused_not_scored_zero():
    net = supernet.build_supernet(small_space())
    with pytest.raises(ConfigError) as e:
        supernet.evaluator(net, data(0))
    assert "validation data is empty" in one_line(e)


@pytest.mark.parametrize("labels", [torch.full((8,), 4), torch.full((8,), -1), torch.full((8,), 0.0)])
def test_labels_that_are_not_class_indices_are_refused(labels):
    net = supernet.build_supernet(small_space())
    with pytest.raises(ConfigError) as e:
        supernet.evaluator(net, TensorDataset(torch.randn(8, 1, 8, 8), labels))
    assert "evaluator(): label" in one_line(e)


# issue 29.11: what a PyTorch user hits


def test_fit_and_search_arch_default_to_the_clis_auto_device():
    import inspect

    assert inspect.signature(supernet.fit).parameters["device"].default == "auto"
    assert inspect.signature(supernet.search_arch).parameters["device"].default == "auto"


def test_search_arch_takes_a_device():
    net = supernet.build_supernet(small_space())
    result = supernet.search_arch(net, data(), device="cpu", population=2, iterations=1)
    assert 0.0 <= result.best_metrics["accuracy"] <= 1.0


def test_optim_config_is_exported():
    from supernet.train.loop import OptimConfig

    assert supernet.OptimConfig is OptimConfig and "OptimConfig" in supernet.__all__


class DictSamples(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        return {"image": torch.zeros(1, 8, 8), "label": 0}


class OneTuples(DictSamples):
    def __getitem__(self, i: int) -> tuple:
        return (torch.zeros(1, 8, 8),)


@pytest.mark.parametrize(
    "dataset, said", [(DictSamples(), "a dict with keys ['image', 'label']"), (OneTuples(), "1-tuple")]
)
def test_samples_of_the_wrong_shape_are_one_line_errors(dataset, said):
    net = supernet.build_supernet(small_space())
    with pytest.raises(supernet.SupernetError) as e:
        supernet.fit(net, dataset, batch_size=4, device="cpu")
    assert "each sample must be an (image, label) pair" in one_line(e) and said in str(e.value)


class Stream(torch.utils.data.IterableDataset):
    """No __len__, as a stream has none."""

    def __iter__(self):
        yield from data(16)


def test_an_iterable_dataset_trains_and_evaluates():
    net = supernet.build_supernet(small_space())
    fit = supernet.fit(net, Stream(), batch_size=4, device="cpu")
    assert fit.global_step == 4
    assert 0.0 <= supernet.evaluator(net, Stream(), device="cpu").evaluate(net.space.sample(random.Random(0))) <= 1.0


def test_train_result_seconds_is_the_whole_call(monkeypatch):
    import time

    net = supernet.build_supernet(small_space())
    build = supernet.api.create_sampler
    monkeypatch.setattr(supernet.api, "create_sampler", lambda *a, **k: time.sleep(0.5) or build(*a, **k))
    start = time.time()
    fit = supernet.fit(net, data(), batch_size=8, device="cpu")
    assert fit.seconds >= 0.5 and fit.seconds <= time.time() - start
