"""Inter-choice dependent weights (Inter-choice dependent super-network weights, section 3.3).

`bias`: before the chosen op of layer l receives its input, a per-channel bias vector selected by
the tuple (choice_{l-D}, ..., choice_{l-1}, choice_l) is added. All vectors are created up front
(zero-initialised), one `nn.Parameter` each, so an optimizer and DDP see a fixed parameter set and a
vector off the step's path gets no gradient at all (`grad` stays None: no momentum, no weight decay).

`split` (D = 1): after `split_at` of the training (or `split_epoch` epochs) every op's weights are
copied once per choice of the previous layer and trained separately from then on
(`Supernet.split_interchoice`).

"Previous" choices: a space may define `previous(layer) -> tuple[int, ...]`, the layers whose
choices precede `layer` (nearest last); otherwise the chain order `0..layer-1` is used. Layers with
fewer than D previous layers get the token `start` in place of the missing ones.

Export: a stand-alone model has no choices, so the arch's bias vectors become constants. Adding a
constant to a block's input equals adding it to the output of the previous non-identity block; when
that block ends in BatchNorm without activation (`ibn`: the linear projection, also with a residual;
`conv` with `act: null`), the vector is folded exactly into that BatchNorm's bias, and the stand-alone
config and its MACs/params are those of the plain model (the CostTable stays exact). Elsewhere (after
a bare ELS conv, an activation, a plug-in block) an explicit `{"type": "bias", "channels": C}` block
is inserted before the layer's block; it has C parameters and no MACs, which the CostTable (it
prices plain stand-alone models) does not count.

Placement (`interchoice_bias_at`). `input` is the paper's. In chains of MobileNet blocks it is
inert: every candidate starts with a 1x1 conv and BatchNorm, the conv turns a per-channel constant
in its input into one in the BN input, and BN (training mode or recalibrated) removes it; so the
loss does not depend on the vector and its gradient is zero up to rounding (measured: after
training, the vectors stay below 2e-7). `pre_act` adds the vector after the block's first
BatchNorm, before its activation (the first place where the block is not invariant to it), with
the width of that layer; ops without one (identity, ELS) get none. It is an extension, not the
paper's method; its export folds exactly into that BN's bias.

Cell spaces (`CellSupernet`): the layers are a cell's edges, "previous" follows the edge order
(`previous_layers`' default), and every cell instance holds its own `InputBiases` (vectors of the
cell's width; none for a `none` current choice, which runs nothing). The vector is added to the
input of the edge's op; the stand-alone cell carries the arch's vectors as explicit per-edge
constants (`bias_edges` in its config, parameters `edge_bias.<edge>`), so export is exact. `split`
copies every edge op per choice of the previous edge (`Cell.split`).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from supernet.core.errors import ConfigError
from supernet.space.space import START, SearchSpace  # noqa: F401  (START re-exported)

MODES = ("none", "bias", "split")
BIAS_PLACES = ("input", "pre_act")
MAX_BIAS_VECTORS_PER_LAYER = 50_000
_FOLDABLE = {"ibn": lambda b: True, "conv": lambda b: b.get("act") is None}


def previous_layers(space: SearchSpace, layer: int) -> tuple[int, ...]:
    """Layers whose choices count as "previous" to `layer`, nearest last (default: the chain order)."""
    fn = getattr(space, "previous", None)
    if callable(fn):
        prev = tuple(int(i) for i in fn(layer))
        if any(not 0 <= i < space.num_layers or i == layer for i in prev):
            raise ConfigError(f"space '{space.name}': previous({layer}) = {prev} names invalid layers")
        return prev
    return tuple(range(layer))


def context_layers(space: SearchSpace, layer: int, depth: int) -> tuple[int, ...]:
    """The (at most `depth`) previous layers whose choices select the weights of `layer`."""
    return previous_layers(space, layer)[-depth:] if depth > 0 else ()


def context_key(names: Sequence[str]) -> str:
    return "+".join(names)


def layer_contexts(space: SearchSpace, layer: int, depth: int) -> list[tuple[str, ...]]:
    """All (previous..., current) name tuples of `layer`, `start` padding the missing previous ones."""
    prev = context_layers(space, layer, depth)
    pad = ((START,),) if len(prev) < depth else ()
    options = [*pad, *(space.layers[i].choices for i in prev), space.layers[layer].choices]
    return list(itertools.product(*options))


class InputBiases(nn.Module):
    """One zero-initialised bias vector per (previous choices, current choice) tuple and layer.

    `channels`: the vectors' length (default: each layer's `in_channels`; a cell supernet passes its
    cell's width). `without[l]`: current choices of layer l that get no vectors (ops that compute
    nothing from their input, e.g. a cell's `none` edge); they still count as previous choices.
    `widths[l]`: {current choice: length} for layer l, in place of `channels`; choices it does not
    name get no vectors (the pre-activation placement: ops without a hidden activation).
    """

    no_weight_decay = True  # `train.no_decay_bn` exempts the vectors (inter-choice paper, Table 5)

    def __init__(
        self,
        space: SearchSpace,
        depth: int,
        channels: int | None = None,
        without: Sequence[Collection[str]] | None = None,
        widths: Sequence[Mapping[str, int]] | None = None,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ConfigError(f"supernet.interchoice_depth must be >= 1, got {depth}")
        self.depth = depth
        self.context = [context_layers(space, i, depth) for i in range(space.num_layers)]
        self.pad = [len(c) < depth for c in self.context]
        tables = []
        for i, layer in enumerate(space.layers):
            skip = frozenset(without[i]) if without is not None else frozenset()
            size = (
                dict(widths[i])
                if widths is not None
                else {op: layer.in_channels if channels is None else channels for op in layer.choices}
            )
            contexts = [c for c in layer_contexts(space, i, depth) if c[-1] not in skip and c[-1] in size]
            if len(contexts) > MAX_BIAS_VECTORS_PER_LAYER:
                raise ConfigError(
                    f"supernet.interchoice_depth={depth} needs {len(contexts)} bias vectors in layer "
                    f"{i} (limit {MAX_BIAS_VECTORS_PER_LAYER}); use a smaller depth"
                )
            tables.append(nn.ParameterDict({context_key(c): nn.Parameter(torch.zeros(size[c[-1]])) for c in contexts}))
        self.tables = nn.ModuleList(tables)

    def key(self, layer: int, ops: Sequence[str]) -> str:
        names = [ops[j] for j in self.context[layer]]
        if self.pad[layer]:
            names.insert(0, START)
        names.append(ops[layer])
        return context_key(names)

    def vector(self, layer: int, ops: Sequence[str]) -> nn.Parameter:
        return self.tables[layer][self.key(layer, ops)]

    def get(self, layer: int, ops: Sequence[str]) -> nn.Parameter | None:
        """The vector, or None where the current choice has none."""
        key = self.key(layer, ops)
        return self.tables[layer][key] if key in self.tables[layer] else None

    def count(self) -> int:
        return sum(len(t) for t in self.tables)


# -- export ----------------------------------------------------------------------------------------


def apply_input_biases(
    model: nn.Sequential, config: Mapping[str, Any], first_layer: int, biases: Sequence[torch.Tensor | None]
) -> nn.Sequential:
    """The stand-alone `model` (built from `config`) with `biases[l]` added to layer l's input.

    `first_layer` is the index in `config["blocks"]` of the first searchable layer's block. Biases
    are folded into the BatchNorm bias of the previous foldable block where exact, otherwise an
    explicit `bias` block is inserted (see the module docstring).
    """
    from supernet.model.standalone import StandaloneNet

    blocks = [dict(b) for b in config["blocks"]]
    folds: dict[int, torch.Tensor] = {}
    inserts: dict[int, torch.Tensor] = {}
    for layer, bias in enumerate(biases):
        if bias is None:
            continue
        at = first_layer + layer
        j = at - 1
        while j >= 0 and blocks[j]["type"] == "identity":
            j -= 1
        if j >= 0 and blocks[j]["type"] in _FOLDABLE and _FOLDABLE[blocks[j]["type"]](blocks[j]):
            folds[j] = folds.get(j, 0) + bias.detach()
        else:
            inserts[at] = bias.detach()
    if inserts:
        new_blocks: list[dict[str, Any]] = []
        index = {}  # old config index -> new config index
        for i, b in enumerate(blocks):
            if i in inserts:
                new_blocks.append({"type": "bias", "channels": int(inserts[i].numel())})
            index[i] = len(new_blocks)
            new_blocks.append(b)
        new = StandaloneNet({**config, "blocks": new_blocks})
        old_modules, new_modules = _modules_by_index(model, blocks), _modules_by_index(new, new_blocks)
        for i, module in old_modules.items():
            new_modules[index[i]].load_state_dict(module.state_dict())
        with torch.no_grad():
            for i, bias in inserts.items():
                new_modules[index[i] - 1].bias.copy_(bias)
        model, blocks, folds = new, new_blocks, {index[i]: v for i, v in folds.items()}
    modules = _modules_by_index(model, blocks)
    with torch.no_grad():
        for j, bias in folds.items():
            _output_batchnorm(modules[j]).bias.add_(bias)
    return model


def fold_pre_activation_biases(
    model: nn.Sequential, config: Mapping[str, Any], first_layer: int, biases: Sequence[torch.Tensor | None]
) -> nn.Sequential:
    """Fold pre-activation vectors into the BatchNorm bias they follow (exact; nothing is added)."""
    modules = _modules_by_index(model, config["blocks"])
    with torch.no_grad():
        for layer, bias in enumerate(biases):
            if bias is not None:
                modules[first_layer + layer].pre_activation()[1].bias.add_(bias)
    return model


def _modules_by_index(model: nn.Sequential, blocks: Sequence[Mapping[str, Any]]) -> dict[int, nn.Module]:
    kept = [i for i, b in enumerate(blocks) if b["type"] != "identity"]
    return dict(zip(kept, model, strict=True))


def _output_batchnorm(block: nn.Module) -> nn.BatchNorm2d:
    """The BatchNorm whose output (plus a residual, if any) is the block's output."""
    from supernet.ops.blocks import ConvBNAct, InvertedBottleneck

    seq = block.project if isinstance(block, InvertedBottleneck) else block
    if not isinstance(seq, ConvBNAct) or not isinstance(seq[2], nn.Identity) or not seq[1].affine:
        raise AssertionError(f"cannot fold a bias into {type(block).__name__}")  # config said foldable
    return seq[1]


def split_if_saved_split(supernet: Any, state_dict: Mapping[str, Any]) -> None:
    """Split `supernet` first when `state_dict` was saved after its inter-choice split."""
    flag = state_dict.get("interchoice_split")
    if supernet.split_context is not None and flag is not None and int(flag) and not supernet.is_split:
        supernet.split_interchoice()
