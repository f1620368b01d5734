"""Search spaces and architecture values."""
from supernet.space.arch import Arch
from supernet.space.registry import create_space, list_spaces, register_space, space_options
from supernet.space.space import LayerSpec, SearchSpace

__all__ = ["Arch", "LayerSpec", "SearchSpace", "create_space", "list_spaces", "register_space", "space_options"]
