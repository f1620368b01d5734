import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supernet.core.errors import SpaceError
from supernet.space import Arch, create_space, list_spaces


def test_scarlet_s1_layout_matches_the_paper():
    space = create_space("scarlet-s1")
    assert space.num_layers == 19
    widths = [32] * 2 + [40] * 4 + [80] * 4 + [96] * 4 + [192] * 4 + [320]
    assert [layer.out_channels for layer in space.layers] == widths
    assert [i for i, layer in enumerate(space.layers) if layer.stride == 2] == [0, 2, 6, 14]
    assert all(layer.choices == ("e3k3", "e3k5", "e3k7", "e6k3", "e6k5", "e6k7", "id") for layer in space.layers)
    narrow = create_space("scarlet-s1", identity_in="same-shape")  # the narrower variant, an option
    assert narrow.layers[1].choices == space.layers[1].choices
    assert "id" not in narrow.layers[0].choices and "id" not in narrow.layers[10].choices


def test_identity_everywhere_gives_the_papers_7_to_the_19():
    space = create_space("scarlet-s1", identity_in="all")
    assert space.size == 7**19


def test_papers_index_form_parses_and_round_trips():
    space = create_space("scarlet-s1")  # the paper's S1 by default: no option needed
    text = "0,5,0,6,3,2,3,0,2,1,3,5,2,4,4,4,5,3,6"  # model A of SCARLET Table 1
    arch = space.parse_arch(text)
    assert arch[3] == "id" and arch[1] == "e6k7"
    assert ",".join(map(str, space.indices(arch))) == text
    assert space.parse_arch(arch.to_string()) == arch


def test_bad_index_names_layer_and_choices():
    space = create_space("scarlet-s1")
    with pytest.raises(SpaceError, match=r"layer 0: '7' is not a choice; allowed: 0=e3k3.*5=e6k7, 6=id"):
        space.parse_arch("7," + ",".join(["0"] * 18))


def test_wrong_length_is_reported():
    with pytest.raises(SpaceError, match="has 2 layers, space 'scarlet-s1' has 19"):
        create_space("scarlet-s1").parse_arch("0,1")


def test_unknown_space_and_option():
    with pytest.raises(SpaceError, match="unknown search space 'nope'"):
        create_space("nope")
    with pytest.raises(SpaceError, match="no option 'depth'"):
        create_space("scarlet-s1", depth=3)


def test_registry_lists_scarlet_s1():
    assert "scarlet-s1" in [e.name for e in list_spaces()]


def test_arch_is_a_hashable_value(tiny_space):
    a = tiny_space.sample(random.Random(0))
    b = Arch(tuple(a.ops))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1


def test_restrict_keeps_order_and_rejects_unknown(tiny_space):
    keep = [["e6k3", "e3k3"]] * tiny_space.num_layers
    small = tiny_space.restrict(keep)
    assert all(layer.choices == ("e3k3", "e6k3") for layer in small.layers)
    with pytest.raises(SpaceError, match="layer 0"):
        tiny_space.restrict([["zz"]] * tiny_space.num_layers)


def test_fingerprint_changes_with_structure():
    assert create_space("scarlet-s1").fingerprint() != create_space("scarlet-s1", width=0.5).fingerprint()
    assert create_space("scarlet-s1").fingerprint() == create_space("scarlet-s1").fingerprint()


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_string_parses_or_raises_space_error(text):
    space = create_space("scarlet-s1", layers_per_stage=(1, 1, 1, 1, 1, 1))
    try:
        arch = space.parse_arch(text)
    except SpaceError as e:
        assert "\n" not in str(e)
    else:
        assert space.validate(arch) == arch


@pytest.mark.parametrize(
    ("text", "layer"),
    [
        ("e3k3,,e3k3," + ",".join(["e3k3"] * 17), 1),  # 20 entries written, one empty: 19 ops left
        (",".join(["e3k3"] * 5) + ", ," + ",".join(["e3k3"] * 14), 5),
        ("," + ",".join(["0"] * 19), 0),
        (",".join(["0"] * 19) + ",", 19),
        ("e3k3 e3k5,,e3k3", 2),  # whitespace-separated entries count too
    ],
)
def test_arch_with_an_empty_entry_is_refused_naming_its_layer(text, layer):
    """Issue 28.15: the empty entry was dropped, shifting every later op a layer (or 'has 18 layers')."""
    with pytest.raises(SpaceError, match=rf"has an empty entry at layer {layer} \("):
        create_space("scarlet-s1").parse_arch(text)


def test_arch_separators_without_empty_entries_still_parse():
    space = create_space("scarlet-s1")
    ops = ["e3k3", "e6k7", "id"] * 6 + ["e3k5"]
    expected = Arch(tuple(ops))
    assert space.parse_arch(", ".join(ops)) == expected
    assert space.parse_arch(" | ".join(" ".join(ops[i : i + 4]) for i in range(0, 19, 4))) == expected


def test_non_identity_keeps_index_order_and_drops_only_the_identity():
    space = create_space("nas-bench-macro", preset="cifar10")
    layer = space.layers[1]
    assert "id" in layer.choices
    assert layer.non_identity == tuple(op for op in layer.choices if op != "id")
    assert len(layer.non_identity) == len(layer.choices) - 1
    restricted = space.restrict([("id",)] + [layer.choices for layer in space.layers[1:]])
    assert restricted.layers[0].non_identity == ()


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_comma_joined_names_and_indices_parse_as_the_token_parser_does(data):
    """The plain `a,b,c` fast path gives what the general parser gives, indices included."""
    space = create_space("scarlet-s1", layers_per_stage=(1, 1, 1, 1, 1, 1))
    tokens = []
    for layer in space.layers:
        index = data.draw(st.integers(0, len(layer.choices) - 1))
        tokens.append(data.draw(st.sampled_from([layer.choices[index], str(index)])))
    expected = Arch(tuple(space._resolve(i, t) for i, t in enumerate(tokens)))
    assert space.parse_arch(",".join(tokens)) == expected
    assert space.parse_arch(" , ".join(tokens)) == expected
