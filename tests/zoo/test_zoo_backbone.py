"""The backbone options of the zoo's chain spaces are declared once (`space/zoo/common.py`, issue 27.5)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields

import pytest

from supernet.core.errors import SpaceError
from supernet.space import create_space, space_options
from supernet.space.zoo.common import Backbone, backbone_factory
from supernet.space.zoo.mobilenet import ScarletOptions, mobilenet_chain
from supernet.space.zoo.shufflenet import ShuffleOptions

BACKBONE = [f.name for f in fields(Backbone)]


@pytest.mark.parametrize(
    ("name", "options", "defaults"),
    [
        ("fairnas", Backbone, {}),
        ("proxyless", Backbone, {}),
        ("scarlet-s1", ScarletOptions, {"identity_in": "all"}),
        ("scarlet-s2", ScarletOptions, {"identity_in": "all"}),
        ("spos-shufflenet", ShuffleOptions, {"head_channels": 1024, "dropout": 0.1, "channels": "none"}),
    ],
)
def test_chain_spaces_take_the_backbone_dataclass(name, options, defaults):
    declared = space_options(name)
    assert list(declared)[: len(BACKBONE)] == BACKBONE
    assert list(declared) == [f.name for f in fields(options)]
    for field in fields(Backbone):
        assert declared[field.name] == defaults.get(field.name, field.default), field.name
    assert {k: declared[k] for k in defaults} == defaults


def test_a_space_declared_with_the_backbone_gets_its_options_checks_and_defaults():
    @dataclass(frozen=True)
    class Narrow(ScarletOptions):
        extra: int = 3

    @backbone_factory(Narrow, width=0.5, identity_in="none")
    def narrow(opts: Narrow) -> object:
        return opts

    params = inspect.signature(narrow).parameters  # what space_options reads
    assert list(params) == [f.name for f in fields(Narrow)]
    assert (params["width"].default, params["identity_in"].default, params["extra"].default) == (0.5, "none", 3)
    built = narrow(num_classes=10)
    assert (built.width, built.num_classes, built.identity_in, built.extra) == (0.5, 10, "none", 3)
    assert built.options(Backbone) == Backbone(width=0.5, num_classes=10).options()
    space = mobilenet_chain("narrow", built.options(), ops=("e3k3",), identity_in="none", act="relu6")
    assert space.options["extra"] == 3 and space.options["width"] == 0.5
    with pytest.raises(TypeError):
        narrow(widht=1.0)


def test_unknown_and_bad_backbone_options_are_still_one_line_errors():
    with pytest.raises(SpaceError, match="has no option 'widht'"):
        create_space("fairnas", widht=1.0)
    with pytest.raises(SpaceError, match="width must be a finite number"):
        create_space("proxyless", width=-1.0)
    with pytest.raises(TypeError, match="no option 'nope'"):
        backbone_factory(Backbone, nope=1)
