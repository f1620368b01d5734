"""The zoo of registered search spaces; importing it registers them."""
from supernet.space.zoo import mobilenet  # noqa: F401
