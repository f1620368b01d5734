"""Export an arch of a trained supernet as a stand-alone model with inherited weights."""
from __future__ import annotations

from supernet.model.fold import fold_standalone_els
from supernet.model.interchoice import apply_input_biases, fold_pre_activation_biases
from supernet.model.standalone import StandaloneNet, copy_block_weights
from supernet.model.supernet import Supernet
from supernet.ops.slicing import copy_leading_slices
from supernet.ops.standalone import standalone_config
from supernet.space.arch import Arch


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
