"""Search spaces and architecture values; importing the package registers the zoo's spaces."""

from supernet.space import zoo  # noqa: F401  (its modules register the zoo's spaces)
from supernet.space.arch import Arch
from supernet.space.registry import SPACES, create_space, list_spaces, register_space, space_options
from supernet.space.space import LayerSpec, SearchSpace

__all__ = [
    "SPACES",
    "Arch",
    "LayerSpec",
    "SearchSpace",
    "create_space",
    "list_spaces",
    "register_space",
    "space_options",
]
