"""Export an arch of a trained supernet as a stand-alone model with inherited weights."""
from __future__ import annotations

from typing import Any

from torch import nn

from supernet.model.cell import cell_standalone_config
from supernet.model.interchoice import apply_input_biases, fold_pre_activation_biases
from supernet.model.standalone import CONFIG_FORMAT, StandaloneNet
from supernet.model.supernet import Supernet
from supernet.model.fold import fold_standalone_els
from supernet.ops.candidates import IDENTITY, candidate_config, exported_config
from supernet.ops.quant import bit_widths, block_bits
from supernet.ops.slicing import copy_leading_slices
from supernet.space.arch import Arch
from supernet.space.space import SearchSpace


def standalone_config(space: SearchSpace, arch: Arch, identity: str = "skip", keep_els: bool = False) -> dict[str, Any]:
    """The config of the stand-alone model an arch denotes (identities that keep shape removed, the
    SCARLET rule for a model trained from scratch; `keep_els`: shape-keeping ELS stay 1x1 conv blocks)."""
    if space.topology != "chain":
        return cell_standalone_config(space, arch, identity)
    arch = space.validate(arch)
    blocks = [dict(b) for b in space.stem]
    blocks += [dict(candidate_config(op, layer, identity) if keep_els and identity == "els" and op == IDENTITY
                    else exported_config(op, layer, identity)) for layer, op in zip(space.layers, arch.ops)]
    blocks += [dict(b) for b in space.head]
    config = {"format": CONFIG_FORMAT, "space": space.name, "space_options": dict(space.options),
              "arch": arch.to_string(), "input_shape": list(space.input_shape),
              "num_classes": space.num_classes, "blocks": blocks}
    if any(block_bits(b) is not None for b in blocks):  # quantized (SPOS Table 6): list every layer's bits
        config["bit_widths"] = bit_widths(blocks)
    return config


def export_model(supernet: Supernet, arch: Arch, drop_els: bool = False) -> StandaloneNet:
    """Stand-alone model for `arch` carrying the supernet's weights for that path: the same function.

    A trained ELS that keeps the shape is folded into the next block where SCARLET's Lemma 1 is exact
    and kept as a 1x1 conv block elsewhere (`supernet.model.fold.fold_standalone_els`); `drop_els`
    applies the paper's rule instead (drop it: a different function, meant for retraining).
    Inter-choice weights: a split supernet's path already holds the copies `arch` selects; the
    bias vectors on `arch`'s path are folded in (`supernet.model.interchoice.apply_input_biases`).
    A supernet with its own `export` (e.g. `CellSupernet`) exports itself.
    """
    if hasattr(supernet, "export"):
        return supernet.export(arch)
    keep = supernet.options.identity == "els" and not drop_els
    config = standalone_config(supernet.space, arch, supernet.options.identity, keep_els=keep)
    model = StandaloneNet(config)
    selects = [{}] * len(supernet.space.stem) + [supernet.select(i, op) for i, op in enumerate(arch.ops)]
    selects += [{}] * len(supernet.space.head)
    kept = [(m, s) for m, s, b in zip(supernet.path_modules(arch), selects, config["blocks"], strict=True)
            if b["type"] != "identity"]
    for target, (source, select) in zip(model, kept, strict=True):
        if select:  # a width choice: the leading slices of the shared block
            copy_leading_slices(source.state_dict(), target)
        else:
            copy_block_weights(source, target)
    biases = supernet.path_biases(arch)
    if any(b is not None for b in biases):
        fold = (fold_pre_activation_biases if supernet.options.interchoice_bias_at == "pre_act"
                else apply_input_biases)
        model = fold(model, config, len(supernet.space.stem), biases)
    if keep:
        model, _ = fold_standalone_els(model, model.config)
    return model


def copy_block_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy a supernet block's state into a stand-alone block of the same type.

    Only BatchNorm affine parameters may be missing in the source (a supernet trained
    with affine-free BN); they keep their identity initialisation (weight 1, bias 0).
    """
    missing, unexpected = target.load_state_dict(source.state_dict(), strict=False)
    bad = [k for k in missing if not _is_bn_affine(target, k)] + list(unexpected)
    if bad:
        raise RuntimeError(f"cannot copy weights into {type(target).__name__}: mismatched keys {bad}")


def _is_bn_affine(module: nn.Module, key: str) -> bool:
    owner, _, leaf = key.rpartition(".")
    sub = module.get_submodule(owner) if owner else module
    return isinstance(sub, nn.modules.batchnorm._BatchNorm) and leaf in ("weight", "bias")
