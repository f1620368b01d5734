"""`build_supernet(space, options)`: the one place that picks a supernet class, by the space's topology."""

from __future__ import annotations

from collections.abc import Callable

from supernet.core.errors import ConfigError
from supernet.core.registry import Registry
from supernet.model.cell import CellSupernet
from supernet.model.protocol import SupernetModel
from supernet.model.supernet import Supernet, SupernetOptions
from supernet.space.space import SearchSpace

SUPERNETS: Registry[Callable[[SearchSpace, SupernetOptions], SupernetModel]] = Registry("space topology", ConfigError)
"""Topology (`SearchSpace.topology`) -> supernet class; a new topology registers its class here."""
SUPERNETS.register(Supernet.topology, Supernet)
SUPERNETS.register(CellSupernet.topology, CellSupernet)


def build_supernet(space: SearchSpace, options: SupernetOptions | None = None) -> SupernetModel:
    """The supernet of `space`: a chain `Supernet` or a `CellSupernet`, by the space's topology."""
    options = options if options is not None else SupernetOptions()
    if options.canonical and space.topology != Supernet.topology:
        raise ConfigError(
            f"supernet.canonical is for chain spaces (one op per layer); space '{space.name}' is {space.topology!r}"
        )
    return SUPERNETS.get(space.topology)(space, options)
