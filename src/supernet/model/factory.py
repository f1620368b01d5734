"""`build_supernet(space, options)`: the supernet class that fits the space's topology."""
from __future__ import annotations

from torch import nn

from supernet.errors import ConfigError
from supernet.model.cell import TOPOLOGY as CELLS, CellSupernet
from supernet.model.supernet import Supernet, SupernetOptions
from supernet.space.space import SearchSpace


def build_supernet(space: SearchSpace, options: SupernetOptions = SupernetOptions()) -> nn.Module:
    """A chain `Supernet` for `topology == "chain"`, a `CellSupernet` for `"cells"`."""
    if space.topology == "chain":
        return Supernet(space, options)
    if space.topology == CELLS:
        return CellSupernet(space, options)
    raise ConfigError(f"no supernet for topology {space.topology!r} of space '{space.name}'")
