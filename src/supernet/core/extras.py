"""Optional dependencies (pip extras): one place that imports them and names the extra when one is missing.

`pip install supernet` installs what training and search need; ONNX export and onnxruntime timing
(`supernet[onnx]`), plots and the HTML report (`supernet[plots]`) and TensorBoard logs
(`supernet[tensorboard]`) come with extras (`supernet[all]`: every one). Import them through `require`,
so that a missing one is a one-line error saying which extra to install, at first use (not at import).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from supernet.core.errors import SupernetError

EXTRAS: dict[str, str] = {
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "matplotlib": "plots",
    "tensorboard": "tensorboard",
}
"""Top-level module -> the extra that installs it (pyproject.toml's optional-dependencies)."""


class MissingExtra(SupernetError, ImportError):
    """An optional dependency that is not installed; the message names the pip extra."""


def require(module: str, purpose: str = "") -> ModuleType:
    """Import `module` (e.g. "onnx", "matplotlib.pyplot"), or raise MissingExtra naming its extra."""
    top = module.partition(".")[0]
    if top not in EXTRAS:
        raise ValueError(f"{top!r} is not an optional dependency; known: {', '.join(sorted(EXTRAS))}")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is None or e.name.partition(".")[0] != top:
            raise  # the package is there but something it imports is not: not ours to rename
        extra = EXTRAS[top]
        what = f"{purpose} needs" if purpose else "needs"
        raise MissingExtra(
            f"{what} the optional package '{top}', which is not installed; install it with "
            f"pip install 'supernet[{extra}]' (or 'supernet[all]')"
        ) from e


def pyplot(purpose: str = "plots") -> ModuleType:
    """`matplotlib.pyplot` on whatever backend its user chose: figures are saved to files and closed, so any
    backend does; the `supernet` command picks the non-interactive Agg (`supernet.cli`), a library leaves
    the choice to the application (a notebook's inline backend stays)."""
    require("matplotlib", purpose)
    return require("matplotlib.pyplot", purpose)
