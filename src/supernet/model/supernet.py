"""The weight-sharing supernet: `forward(x, arch)` runs exactly the chosen path.

A path is a value: an `Arch` (one op per layer) or, for the path-dropout baseline, a `MultiPath`
(several ops per layer whose outputs are summed). The supernet holds no "current path" state.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from supernet.core.errors import ConfigError
from supernet.model.fold import compose_els, fold_els_map, fold_standalone_els
from supernet.model.interchoice import (
    BIAS_PLACES,
    MODES,
    START,
    InputBiases,
    apply_input_biases,
    context_layers,
    fold_pre_activation_biases,
    split_if_saved_split,
)
from supernet.model.standalone import StandaloneNet, copy_block_weights
from supernet.ops.blocks import ConvBNAct, build_block, split_copies
from supernet.ops.candidates import IDENTITY, IDENTITY_MODES, candidate_config, supernet_candidate
from supernet.ops.slicing import copy_leading_slices, parameter_shapes, slice_masks
from supernet.ops.standalone import let_standalone_config, standalone_config
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace


@dataclass(frozen=True)
class MultiPath:
    """Several candidates per layer (SPOS Fig. 1's path-dropout baseline): layer l's output is the
    sum of the outputs of `ops[l]` (each non-empty, in the space's choice order)."""

    ops: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(tuple(layer) for layer in self.ops))
        if any(not layer for layer in self.ops):
            raise ValueError("a MultiPath keeps at least one op per layer")

    def __len__(self) -> int:
        return len(self.ops)

    def __str__(self) -> str:
        return ",".join("+".join(layer) for layer in self.ops)


SupernetPath = Arch | MultiPath  # what one forward runs


@dataclass(frozen=True)
class SupernetOptions:
    """How the supernet is built: the `supernet` section of the run config (`supernet.config.Config`).

    identity: `skip` (a plain skip) or `els` (SCARLET's learnable 1x1 stabilizer).
    bn_affine: BatchNorm with learnable affine parameters. Default True; the official SPOS
        supernet uses affine-free BN (set False for that convention). Stand-alone models always
        get affine BN (initialised to 1 and 0 where the supernet had none).
    zero_init_residual: residual candidates start as the identity (last BN scale zero; needs
        bn_affine). Default True: without it, the small CPU supernets here did not learn at all
        (sampled-path accuracy stayed at chance for 1,100 steps), because every randomly chosen
        residual branch adds unit-variance noise that is uncorrelated across candidates.
    interchoice: inter-choice dependent weights (inter-choice paper section 3.3): `none`, `bias`
        (an input bias per (D previous choices, current choice), D = `interchoice_depth`) or
        `split` (op weights are copied per previous choice after `split_at` of the training, a
        fraction of `train.epochs`: the paper splits at 125, 175 or 200 of 250 epochs; default 0.5,
        its earliest; `split_epoch`, when set, is an explicit epoch instead).
    interchoice_bias_at: `input` (the paper's placement; inert in MobileNet-block chains, see
        `supernet.model.interchoice`) or `pre_act` (after each block's first BatchNorm).
    canonical: every path runs as its canonical form (`SearchSpace.canonical`: in each stage, the
        identities after the first layer moved to the stage's end), so the spellings of one network
        share one weight path (once-for-all's elastic depth); training, scoring and export all see it,
        searches still propose every spelling. Chain spaces with `identity: skip` only.
    """

    identity: str = "skip"
    bn_affine: bool = True
    zero_init_residual: bool = True
    interchoice: str = "none"
    interchoice_depth: int = 1
    interchoice_bias_at: str = "input"
    split_at: float = 0.5
    split_epoch: int | None = None
    canonical: bool = False

    def __post_init__(self) -> None:
        if self.canonical and self.identity != "skip":
            raise ConfigError(
                "supernet.canonical needs supernet.identity=skip (an ELS identity computes something, so moving "
                f"it changes the network), got identity={self.identity!r}"
            )
        if self.identity not in IDENTITY_MODES:
            raise ConfigError(f"supernet.identity must be one of {IDENTITY_MODES}, got {self.identity!r}")
        if self.interchoice not in MODES:
            raise ConfigError(f"supernet.interchoice must be one of {MODES}, got {self.interchoice!r}")
        if self.interchoice_depth < 1:
            raise ConfigError(f"config field 'supernet.interchoice_depth' must be >= 1, got {self.interchoice_depth}")
        if self.interchoice == "split" and self.interchoice_depth != 1:
            raise ConfigError(
                "supernet.interchoice=split depends on the previous choice only (interchoice_depth must be 1)"
            )
        if self.interchoice_bias_at not in BIAS_PLACES:
            raise ConfigError(
                f"supernet.interchoice_bias_at must be one of {BIAS_PLACES}, got {self.interchoice_bias_at!r}"
            )
        if self.split_epoch is not None and self.split_epoch < 0:
            raise ConfigError(f"config field 'supernet.split_epoch' must be >= 0, got {self.split_epoch}")

    def split_epoch_for(self, epochs: int) -> int:
        """The epoch at whose start a `split` supernet splits: `split_epoch` when set, else the first
        epoch after `split_at` of `epochs` (0.5 of 250: epoch 125, after 125 shared epochs)."""
        if self.split_epoch is not None:
            return self.split_epoch
        return math.floor(self.split_at * epochs)

    def to_dict(self) -> dict:
        return asdict(self)


def _check_closed(space: SearchSpace) -> None:
    """`supernet.canonical` runs each arch as its canonical form, which must be a path of the supernet."""
    outside = space.canonical_outside()
    if outside is not None:
        raise ConfigError(
            f"supernet.canonical needs a space that holds the canonical form of each of its archs (identities "
            f"moved to each stage's end); space '{space.name}' holds {outside} but not its form "
            f"{space.canonical(outside)} (a pruned space?): set supernet.canonical=false"
        )


class Supernet(nn.Module):
    """All candidates of all layers; the architecture is an argument of `forward`, never state."""

    topology = "chain"

    def __init__(self, space: SearchSpace, options: SupernetOptions = SupernetOptions()) -> None:
        super().__init__()
        if space.topology != self.topology:
            raise ConfigError(
                f"space '{space.name}' has topology '{space.topology}'; this supernet runs chain spaces "
                f"(stem, one candidate per layer, head)"
            )
        if options.canonical:
            _check_closed(space)
        self.space = space
        self.options = options
        affine = options.bn_affine
        self.stem = nn.Sequential(*(build_block(c, affine) for c in space.stem))
        # routes[layer][op] = (module key in choices[layer], forward keyword arguments): width
        # choices of one op share a block at the largest width and select their slice.
        self.routes: list[dict[str, tuple[str, dict[str, Any]]]] = []
        self.choices = nn.ModuleList()
        for layer in space.layers:
            modules, routes = nn.ModuleDict(), {}
            for op in layer.choices:
                key, config, select = supernet_candidate(op, layer, options.identity)
                if key not in modules:
                    modules[key] = build_block(config, affine)
                routes[op] = (key, select)
            self.choices.append(modules)
            self.routes.append(routes)
        if options.interchoice != "none" and any(select for routes in self.routes for _, select in routes.values()):
            raise ConfigError(
                f"space '{space.name}' has width choices (shared, sliced blocks); inter-choice weights "
                f"are not built for them (set supernet.interchoice=none)"
            )
        self.head = nn.Sequential(*(build_block(c, affine) for c in space.head))
        if options.zero_init_residual:
            for module in self.modules():
                if hasattr(module, "zero_init_residual"):
                    module.zero_init_residual()
        self.biases = self._biases(space, options) if options.interchoice == "bias" else None
        self.split_context = None
        if options.interchoice == "split":
            # Part of the state dict, so that a checkpoint records whether the split happened.
            self.register_buffer("interchoice_split", torch.zeros((), dtype=torch.long))
            self.split_context = [context_layers(space, i, 1) for i in range(space.num_layers)]

    def _biases(self, space: SearchSpace, options: SupernetOptions) -> InputBiases:
        if options.interchoice_bias_at == "input":
            if self._input_bias_is_inert():
                warnings.warn(
                    f"supernet.interchoice=bias at the layer input is inert in space '{space.name}': every "
                    f"candidate starts with a 1x1 conv and BatchNorm, which removes it (set "
                    f"supernet.interchoice_bias_at=pre_act)",
                    stacklevel=3,
                )
            return InputBiases(space, options.interchoice_depth)
        widths = [
            {
                op: block.pre_activation()[1].num_features
                for op, block in layer.items()
                if hasattr(block, "pre_activation")
            }
            for layer in self.choices
        ]
        if not any(widths):
            raise ConfigError(
                f"supernet.interchoice_bias_at=pre_act: no candidate of space '{space.name}' has "
                f"a pre-activation point (MobileNet blocks); use interchoice_bias_at=input"
            )
        return InputBiases(space, options.interchoice_depth, widths=widths)

    def _input_bias_is_inert(self) -> bool:
        """True when a per-channel input constant cannot change any path's output: every candidate is
        linear without padding (identity, ELS) or starts with a 1x1 conv + BN, and so does the head."""

        def removes_constants(block: nn.Module) -> bool:
            first = block.pre_activation() if hasattr(block, "pre_activation") else block
            return isinstance(first, ConvBNAct) and first[0].kernel_size == (1, 1)

        def linear_pointwise(block: nn.Module) -> bool:
            return isinstance(block, nn.Identity) or isinstance(block, nn.Conv2d) and block.kernel_size == (1, 1)

        choices_ok = all(removes_constants(b) or linear_pointwise(b) for layer in self.choices for b in layer.values())
        return choices_ok and len(self.head) > 0 and removes_constants(self.head[0])

    # -- structure -------------------------------------------------------------------------------
    @property
    def is_split(self) -> bool:
        return self.split_context is not None and bool(self.interchoice_split)

    def _previous_name(self, layer: int, ops: tuple[str, ...]) -> str:
        prev = self.split_context[layer]
        return ops[prev[-1]] if prev else START

    def block(self, layer: int, op: str, ops: tuple[str, ...] | None = None) -> nn.Module:
        """The module that runs `op` in `layer` (after a split, the copy that `ops` selects); a width
        choice runs it with `self.select(layer, op)`."""
        module = self.choices[layer][self.routes[layer][op][0]]
        if self.is_split:
            if ops is None:
                raise ValueError("a split supernet needs the whole arch to select a block")
            module = module[self._previous_name(layer, ops)]
        return module

    def select(self, layer: int, op: str) -> dict[str, Any]:
        """Keyword arguments with which `op`'s module runs it (a width choice: its slice), else {}."""
        return self.routes[layer][op][1]

    def _run(
        self, layer: int, op: str, x: torch.Tensor, ops: tuple[str, ...] | None = None, **extra: Any
    ) -> torch.Tensor:
        return self.block(layer, op, ops)(x, **self.routes[layer][op][1], **extra)

    def sliced_masks(self, paths: Iterable[SupernetPath]) -> dict[nn.Parameter, torch.Tensor]:
        """{parameter: bool mask of the part the paths use} for the shared blocks of width choices
        (every other parameter a path touches is used whole); see `OutsideSlicesKept`."""
        masks: dict[nn.Parameter, torch.Tensor] = {}
        for path in map(self.path_of, paths):
            layers = path.ops if isinstance(path, MultiPath) else [(op,) for op in path.ops]
            for i, ops in enumerate(layers):
                for op in ops:
                    if not self.routes[i][op][1]:
                        continue
                    module = self.block(i, op, path.ops if isinstance(path, Arch) else None)
                    for p, mask in slice_masks(module, self._slice_shapes(i, op)).items():
                        masks[p] = masks[p] | mask if p in masks else mask
        return masks

    def _slice_shapes(self, layer: int, op: str) -> dict[str, torch.Size]:
        """Parameter shapes of `op`'s stand-alone block (built once on the meta device)."""
        cache = self.__dict__.setdefault("_shape_cache", {})
        if (layer, op) not in cache:
            with torch.device("meta"):
                block = build_block(candidate_config(op, self.space.layers[layer], self.options.identity))
            cache[(layer, op)] = parameter_shapes(block)
        return cache[(layer, op)]

    def split_interchoice(self) -> dict[nn.Parameter, nn.Parameter]:
        """Copy every op's weights once per choice of its previous layer (`start` if none).

        Returns {copy's parameter: the parameter it was copied from}, so that an optimizer can give
        each copy the original's state. Calling it again does nothing (returns {}).
        """
        if self.split_context is None:
            raise ConfigError("split_interchoice needs supernet.interchoice=split")
        if self.is_split:
            return {}
        origin: dict[nn.Parameter, nn.Parameter] = {}
        for i, layer in enumerate(self.choices):
            prev = self.split_context[i]
            names = self.space.layers[prev[-1]].choices if prev else (START,)
            self.choices[i] = split_copies(layer, names, origin)
        self.interchoice_split.fill_(1)
        return origin

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """Like nn.Module's; a state saved after the split first splits this supernet."""
        split_if_saved_split(self, state_dict)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # -- forward ---------------------------------------------------------------------------------
    def path_of(self, arch: SupernetPath) -> SupernetPath:
        """The path that runs `arch`: its canonical form with `options.canonical`, else `arch` itself."""
        if self.options.canonical and isinstance(arch, Arch):
            return self.space.canonical(arch)
        return arch

    def forward(self, x: torch.Tensor, arch: SupernetPath) -> torch.Tensor:
        x = self.stem(x)
        if isinstance(arch, MultiPath):
            return self.head(self._forward_multi(x, arch))
        ops = self.path_of(arch).ops
        if len(ops) != len(self.choices):
            raise ValueError(f"arch has {len(ops)} layers, supernet has {len(self.choices)}")
        if self.biases is None and not self.is_split:
            for i, op in enumerate(ops):
                x = self._run(i, op, x)
        else:
            for i in range(len(ops)):
                x = self.run_layer(i, ops, x)
        return self.head(x)

    def run_layer(self, i: int, ops: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
        """Layer i of the path `ops`, with its inter-choice weights (bias where configured, split copy)."""
        bias = self.biases.get(i, ops) if self.biases is not None else None
        if bias is None:
            return self._run(i, ops[i], x, ops)
        if self.options.interchoice_bias_at == "pre_act":
            return self._run(i, ops[i], x, ops, hidden_bias=bias)
        return self._run(i, ops[i], x + bias.view(1, -1, 1, 1), ops)

    def _forward_multi(self, x: torch.Tensor, path: MultiPath) -> torch.Tensor:
        if self.biases is not None or self.split_context is not None:
            raise ConfigError("a multi-path (path-dropout) step needs supernet.interchoice=none")
        for i, ops in enumerate(path.ops):
            outs = [self._run(i, op, x) for op in ops]
            x = outs[0]
            for out in outs[1:]:
                x = x + out
        return x

    def path_biases(self, arch: Arch) -> list[torch.Tensor | None]:
        """The inter-choice bias vector of each layer on `arch`'s path (None: no bias), added where
        `options.interchoice_bias_at` says."""
        if self.biases is None:
            return [None] * len(arch)
        arch = self.path_of(arch)
        return [self.biases.get(i, arch.ops) for i in range(len(arch))]

    def path_modules(self, arch: SupernetPath) -> Iterator[nn.Module]:
        """The modules an arch uses, in order: stem blocks, one candidate per layer, head blocks.

        For a MultiPath, every kept candidate of a layer, in the path's order."""
        arch = self.path_of(arch)
        yield from self.stem
        if isinstance(arch, MultiPath):
            for i, ops in enumerate(arch.ops):
                yield from (self.block(i, op) for op in ops)
        else:
            for i, op in enumerate(arch.ops):
                yield self.block(i, op, arch.ops)
        yield from self.head

    def export(self, arch: Arch, drop_els: bool = False) -> StandaloneNet:
        """The stand-alone model of `arch` carrying this supernet's weights for that path: the same function.

        A trained ELS that keeps the shape is folded into the next block where SCARLET's Lemma 1 is exact
        and kept as a 1x1 conv block elsewhere (`supernet.model.fold.fold_standalone_els`); `drop_els`
        applies the paper's rule instead (drop it: a different function, meant for retraining).
        Inter-choice weights: a split supernet's path already holds the copies `arch` selects; the
        bias vectors on `arch`'s path are folded in (`supernet.model.interchoice.apply_input_biases`).
        Width choices copy the leading slices of their shared block.
        """
        arch = self.path_of(arch)
        let = drop_els and self.options.identity == "els"
        keep = self.options.identity == "els" and not drop_els
        if let:  # the LET paper's model for retraining: every identity dropped
            config = let_standalone_config(self.space, arch)
        else:
            config = standalone_config(self.space, arch, self.options.identity, keep_els=keep)
        model = StandaloneNet(config)
        self._copy_path_weights(arch, config, model, let)
        biases = self.path_biases(arch)
        if (
            let
            and any(b is not None for b in biases)
            and config["blocks"] != standalone_config(self.space, arch, "els")["blocks"]
        ):
            raise ConfigError(
                f"export --drop-els of {arch}: the LET model drops an identity that changes the shape, and the "
                f"inter-choice biases are not carried into it (export without --drop-els)"
            )
        if any(b is not None for b in biases):
            fold = fold_pre_activation_biases if self.options.interchoice_bias_at == "pre_act" else apply_input_biases
            model = fold(model, config, len(self.space.stem), biases)
        if keep:
            model, _ = fold_standalone_els(model, model.config)
        return model

    def _copy_path_weights(self, arch: Arch, config: Mapping[str, Any], model: StandaloneNet, let: bool) -> None:
        """Load `arch`'s path weights into `model` (built from `config`). In the LET model (`let`) the block
        after dropped shape-changing ELS absorbs their maps (`supernet.model.fold.fold_els_map`)."""
        selects = [{}] * len(self.space.stem) + [self.select(i, op) for i, op in enumerate(arch.ops)]
        selects += [{}] * len(self.space.head)
        pending: torch.Tensor | None = None  # the dropped shape-changing ELS maps since the last kept block
        targets = iter(model)
        for k, (source, select, block) in enumerate(
            zip(self.path_modules(arch), selects, config["blocks"], strict=True)
        ):
            layer = k - len(self.space.stem)
            if let and 0 <= layer < len(arch) and arch.ops[layer] == IDENTITY:
                if block["type"] != "identity":
                    next(targets)  # a subsample: no weights
                if not self.space.layers[layer].keeps_shape:
                    pending = compose_els(source, pending)
                continue
            if block["type"] == "identity":
                continue
            target = next(targets)
            if select:  # a width choice: the leading slices of the shared block
                copy_leading_slices(source.state_dict(), target)
            elif pending is not None:
                fold_els_map(source, target, pending)
            else:
                copy_block_weights(source, target)
            pending = None

    def candidate_parameters(self, layer: int, op: str) -> Iterator[nn.Parameter]:
        """All weights of `op` in `layer` (after a split: of all its copies; a width choice: the
        whole shared block)."""
        return self.choices[layer][self.routes[layer][op][0]].parameters()
