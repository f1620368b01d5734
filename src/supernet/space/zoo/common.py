"""Builders shared by the zoo's chain spaces: stage layouts, classifier heads, arch notation."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from supernet.core.errors import SpaceError
from supernet.space.space import LayerSpec, SearchSpace

# (output channels, number of layers, stride of the first layer)
Stage = tuple[int, int, int]
# choices(index of the layer in its stage, whether the layer keeps its input shape) -> op names
ChoiceRule = Callable[[int, bool], Sequence[str]]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels as MobileNetV2 does: to a multiple of `divisor`, never below 90%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


MAX_WIDTH = 64.0  # a width multiplier; beyond this channel counts stop being buildable (inf at 1e308)


def check_backbone(width: float, resolution: int, input_channels: int, num_classes: int, stem_stride: int) -> None:
    """The options every chain space of the zoo shares, checked with one-line errors."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= MAX_WIDTH:
        raise SpaceError(f"width must be a finite number > 0 and <= {MAX_WIDTH}, got {width!r}")
    if resolution < 8:
        raise SpaceError(f"resolution must be >= 8, got {resolution}")
    if input_channels < 1 or num_classes < 2:
        raise SpaceError(f"need input_channels >= 1 and num_classes >= 2, got {input_channels}, {num_classes}")
    if stem_stride not in (1, 2):
        raise SpaceError(f"stem_stride must be 1 or 2, got {stem_stride}")


def options_of(**options: Any) -> dict[str, Any]:
    """A factory's options as stored on the space (tuples as lists, so they stay JSON values)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}


@dataclass(frozen=True)
class Backbone:
    """The options the zoo's MobileNet/ShuffleNet-style chain spaces share, declared once: a space subclasses it
    for options of its own and its factory takes them as keyword arguments (`backbone_factory`), as timm's
    model entrypoints hand `**kwargs` to one builder. Defaults: ImageNet at full width."""

    width: float = 1.0
    resolution: int = 224
    input_channels: int = 3
    num_classes: int = 1000
    stem_stride: int = 2
    head_channels: int = 1280
    layers_per_stage: tuple[int, ...] | None = None  # None: the space's own depths
    dropout: float = 0.0

    def check(self) -> None:
        check_backbone(self.width, self.resolution, self.input_channels, self.num_classes, self.stem_stride)

    def options(self, *only: type[Backbone]) -> dict[str, Any]:
        """The options as stored on the space (`options_of`): every field, or those `only` declares."""
        names = [f.name for f in fields(only[0] if only else self)]
        return options_of(**{name: getattr(self, name) for name in names})


def backbone_factory(options: type[Backbone], **defaults: Any) -> Callable[[Callable[..., SearchSpace]], Any]:
    """Decorator: a builder `build(opts: options)` becomes the space factory `f(**options) -> SearchSpace`.
    Its keyword parameters are `options`' fields with `defaults` in place of the dataclass's (what
    `space_options` and `create_space` read from the signature); an unknown option is a TypeError."""
    names = {f.name for f in fields(options)}
    if not set(defaults) <= names:
        raise TypeError(f"{options.__name__} has no option {sorted(set(defaults) - names)[0]!r}")

    def wrap(build: Callable[..., SearchSpace]) -> Any:
        @functools.wraps(build)
        def factory(**kwargs: Any) -> SearchSpace:
            return build(options(**{**defaults, **kwargs}))

        keyword = inspect.Parameter.KEYWORD_ONLY
        params = [inspect.Parameter(f.name, keyword, default=defaults.get(f.name, f.default)) for f in fields(options)]
        factory.__signature__ = inspect.Signature(params, return_annotation=SearchSpace)  # type: ignore[attr-defined]
        return factory

    return wrap


def stage_depths(stages: Sequence[Stage], layers_per_stage: Sequence[int] | None) -> tuple[int, ...]:
    if layers_per_stage is None:
        return tuple(s[1] for s in stages)
    depths = tuple(layers_per_stage)
    if len(depths) != len(stages) or min(depths) < 1:
        raise SpaceError(f"layers_per_stage needs {len(stages)} positive ints, got {list(depths)}")
    return depths


def stage_layers(
    cin: int,
    stages: Sequence[Stage],
    choices: ChoiceRule,
    act: str,
    channels: Callable[[int], int] = lambda c: c,
    layers_per_stage: Sequence[int] | None = None,
) -> tuple[tuple[LayerSpec, ...], int]:
    """The searchable layers of a stage layout, and the width they end with."""
    layers = []
    for (ch, _, stride), depth in zip(stages, stage_depths(stages, layers_per_stage)):
        for i in range(depth):
            cout, s = channels(ch), (stride if i == 0 else 1)
            layers.append(LayerSpec(cin, cout, s, tuple(choices(i, s == 1 and cin == cout)), act))
            cin = cout
    return tuple(layers), cin


def classifier_head(
    cin: int, head_channels: int, num_classes: int, act: str, dropout: float = 0.0, bias: bool | None = True
) -> tuple[dict[str, Any], ...]:
    """1x1 conv + BN + act, global average pool, dropout, linear. `bias=None` leaves the linear block's
    `bias` key out (a bias all the same: the block's default), the form some spaces were fingerprinted with."""
    linear: dict[str, Any] = {"type": "linear", "in": head_channels, "out": num_classes}
    if bias is not None:
        linear["bias"] = bias
    return (
        {"type": "conv", "in": cin, "out": head_channels, "kernel": 1, "act": act},
        {"type": "pool"},
        {"type": "dropout", "p": dropout},
        linear,
    )


_IBN_TOKEN = re.compile(r"^(?P<e>\d+)-(?P<k>\d+)(?P<se>\+?)$")


def ibn_arch(text: str) -> str:
    """The papers' figure notation as op names: `3-7` -> e3k7, `3-7+` -> e3k7_se, `ID` -> id;
    `|` (stage bars) and whitespace separate layers."""
    ops = []
    for token in re.split(r"[\s|,]+", text.strip()):
        if not token:
            continue
        if token.lower() == "id":
            ops.append("id")
            continue
        m = _IBN_TOKEN.match(token)
        if not m:
            raise ValueError(f"bad layer {token!r} in {text!r}")
        ops.append(f"e{m['e']}k{m['k']}" + ("_se" if m["se"] else ""))
    return ",".join(ops)


def with_named_archs(space: SearchSpace, archs: dict[str, str]) -> SearchSpace:
    """`space` with those of `archs` (lowercase name -> op names) that are members of it: a named
    arch is offered only where the layout and choices it was published with are available."""
    kept = {}
    for name, text in archs.items():
        try:
            space.parse_arch(text)
        except SpaceError:
            continue
        kept[name.lower()] = text
    return replace(space, named_archs={**space.named_archs, **kept})
