"""Space sizes and layouts of the zoo, the SPOS shuffle unit and NAS-Bench-Macro's digit archs."""

import json

import pytest
import torch

from supernet.core.errors import SpaceError
from supernet.model.export import standalone_config
from supernet.ops.blocks import build_block
from supernet.ops.candidates import candidate_config, exported_config
from supernet.space import create_space
from supernet.space.zoo.common import ibn_arch
from tests.conftest import rebuilt_output_shape, run_main


def test_space_sizes():
    assert create_space("proxyless").size == 3 * 6**6 * 7**15
    assert create_space("spos-shufflenet").size == 4**20
    assert create_space("nas-bench-macro").size == 3**8
    assert create_space("fairnas").size == 6**19
    assert create_space("scarlet-s1").size == 7**19  # the paper's S1 is the default
    assert create_space("scarlet-s2").size == 13**19  # the paper's S2 is the default
    assert create_space("scarlet-s1", identity_in="same-shape").size == 6**6 * 7**13  # the narrower variant
    assert create_space("scarlet-s2", identity_in="same-shape").size == 12**6 * 13**13


def test_scarlet_s2_numbers_its_13_choices_as_the_let_papers_table_1():
    space = create_space("scarlet-s2")
    table_1 = (
        "e3k3",
        "e3k3_se",
        "e3k5",
        "e3k5_se",
        "e3k7",
        "e3k7_se",  # index 0..5
        "e6k3",
        "e6k3_se",
        "e6k5",
        "e6k5_se",
        "e6k7",
        "e6k7_se",
        "id",
    )  # 6..11, 12 = identity
    for layer in space.layers:
        assert layer.choices == table_1
        assert layer.act == "hswish"
    assert space.parse_arch(",".join(["1"] * 19))[0] == "e3k3_se" and space.parse_arch(",".join(["12"] * 19))[5] == "id"
    se = build_block(candidate_config("e6k5_se", space.layers[1]))
    assert se.se.reduce.out_channels == se.se.reduce.in_channels // 4 == 32 * 6 // 4
    # stem conv, separable depthwise (its 1x1 is linear), head conv: ReLU6 as in the released models
    assert [b.get("act") for b in space.stem + space.head if b["type"] == "conv"] == ["relu6", "relu6", None, "relu6"]


def test_fairnas_is_scarlet_s1_without_identity():
    a, b = create_space("fairnas"), create_space("scarlet-s1", identity_in="none")
    assert (a.stem, a.layers, a.head) == (b.stem, b.layers, b.head)


def test_proxyless_layout_follows_pad_nas_table_1():
    space = create_space("proxyless")
    widths = [16] + [32] * 4 + [40] * 4 + [80] * 4 + [96] * 4 + [192] * 4 + [320]
    assert [l.out_channels for l in space.layers] == widths
    assert [i for i, l in enumerate(space.layers) if l.stride == 2] == [1, 5, 9, 17]
    assert space.layers[0].choices == ("e1k3", "e1k5", "e1k7")
    firsts = {1, 5, 9, 13, 17, 21}
    assert all(("id" in l.choices) == (i not in firsts and i > 0) for i, l in enumerate(space.layers))
    assert space.stem[0]["out"] == 32 and space.head[0]["out"] == 1280


def test_spos_layout_follows_table_2():
    space = create_space("spos-shufflenet")
    assert [l.out_channels for l in space.layers] == [64] * 4 + [160] * 4 + [320] * 8 + [640] * 4
    assert [i for i, l in enumerate(space.layers) if l.stride == 2] == [0, 4, 8, 16]
    assert space.layers[0].choices == ("choice_3", "choice_5", "choice_7", "choice_x")
    assert space.stem[0]["out"] == 16 and space.stem[0]["stride"] == 2
    assert space.head[0]["out"] == 1024 and space.head[-1]["bias"] is False
    assert candidate_config("choice_5", space.layers[9])["mid"] == 160
    with pytest.raises(SpaceError, match="no wider"):
        create_space("spos-shufflenet", width=0.1)


def test_shuffle_unit_passes_the_even_channels_and_projects_on_stride_2():
    space = create_space("spos-shufflenet", preset="fashion-mnist")
    layer = space.layers[1]
    block = build_block(candidate_config("choice_x", layer)).eval()
    x = torch.randn(2, layer.in_channels, 7, 7)
    y = block(x)
    half = layer.in_channels // 2
    torch.testing.assert_close(y[:, :half], x[:, 0::2])  # the channel shuffle: even channels pass through
    x_odd_changed = x.clone()
    x_odd_changed[:, 1::2] += 1
    torch.testing.assert_close(block(x_odd_changed)[:, :half], y[:, :half])
    down = build_block(candidate_config("choice_7", space.layers[0]))
    assert down.proj is not None and down.proj[0][0].kernel_size == (7, 7)
    assert down(torch.randn(1, space.layers[0].in_channels, 8, 8)).shape == (1, space.layers[0].out_channels, 4, 4)


def test_nas_bench_macro_digit_archs_and_identity():
    space = create_space("nas-bench-macro")
    arch = space.parse_arch("02012100")
    assert arch.ops == ("id", "e6k5", "id", "e3k3", "e6k5", "e3k3", "id", "id")
    assert space.parse_arch("0,2,0,1,2,1,0,0") == arch
    with pytest.raises(SpaceError):
        space.parse_arch("0201210")
    with pytest.raises(SpaceError):
        space.parse_arch("02012103")
    with pytest.raises(SpaceError):  # only spaces that ask for it read digits written together
        create_space("scarlet-s1", layers_per_stage=(1, 1, 1, 1, 1, 1)).parse_arch("000000")
    assert [l.out_channels for l in space.layers] == [64] * 2 + [128] * 3 + [256] * 3
    assert [l.stride for l in space.layers] == [2, 1, 2, 1, 1, 2, 1, 1]
    assert exported_config("id", space.layers[0], "skip") == {
        "type": "conv",
        "in": 32,
        "out": 64,
        "kernel": 1,
        "stride": 2,
        "act": None,
    }
    assert exported_config("id", space.layers[0], "els")["type"] == "els"
    assert exported_config("id", space.layers[1], "skip") == {"type": "identity"}
    assert space.stem[0].get("stride", 1) == 1 and space.input_shape == (3, 32, 32)


def test_ibn_arch_notation():
    assert ibn_arch("3-7 6-5+ | ID") == "e3k7,e6k5_se,id"
    with pytest.raises(ValueError):
        ibn_arch("3x7")


def test_shufflenet_model_rebuilds_from_json_in_a_fresh_process():
    space = create_space("spos-shufflenet", preset="fashion-mnist")
    assert rebuilt_output_shape(standalone_config(space, space.parse_arch("spos-searched"))) == "(2, 10)"


def test_cli_lists_the_zoo_and_prices_named_and_digit_archs():
    out = run_main("spaces", "--json", code=0)
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["scarlet-s2"]["named_archs"] == ["scarlet-a", "scarlet-b", "scarlet-c"]
    assert rows["nas-bench-macro"]["size"] == 3**8
    out = run_main("cost", "--space", "nas-bench-macro", "--arch", "02012100", "--json", code=0)
    assert json.loads(out.stdout)["indices"] == [0, 2, 0, 1, 2, 1, 0, 0]
