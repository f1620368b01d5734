"""The zoo of registered search spaces; importing it registers them."""
from supernet.space.zoo import fairnas, mobilenet, nasbench_macro, proxyless, scarlet, shufflenet  # noqa: F401
