"""The zoo of registered search spaces; importing it registers them."""
from supernet.space.zoo import (fairnas, mobilenet, nasbench101, nasbench201, nasbench_macro, proxyless,  # noqa: F401
                                resnet_quant, scarlet, shufflenet)
