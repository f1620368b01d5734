"""The op-name grammar shared by spaces (which write names) and ops (which resolve them).

Width choices are written `<op>@<scale>` (`choice_3@0.4`, `w2a4@1.5`). It lives in the space layer
so that a space can spell its choices without importing the blocks that implement them.
"""

from __future__ import annotations

IDENTITY = "id"  # the identity choice: a no-op where the layer keeps the shape
IDENTITY_MODES = ("skip", "els")
"""How an `id` choice is built: a plain skip, or SCARLET's learnable 1x1 stabilizer (ELS). Here, below the
ops, so that the command line's parser names them without importing torch."""


def split_scale(op: str) -> tuple[str, float]:
    """`choice_3@0.4` -> ("choice_3", 0.4)."""
    base, sep, scale = op.partition("@")
    try:
        value = float(scale)
    except ValueError:
        value = float("nan")
    if not sep or not value > 0:
        raise ValueError(f"op {op!r} is not of the form <op>@<positive scale>")
    return base, value


def scale_name(base: str, scale: float) -> str:
    """("choice_3", 0.4) -> `choice_3@0.4`; 1.0 -> `@1.0`."""
    return f"{base}@{float(scale):g}" if float(scale) % 1 else f"{base}@{float(scale):.1f}"
