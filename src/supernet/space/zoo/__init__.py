"""The zoo of registered search spaces; importing it registers them."""

from supernet.space.zoo import (  # noqa: F401
    fairnas,
    mobilenet,
    nasbench101,
    nasbench201,
    nasbench_macro,
    proxyless,
    resnet_quant,
    scarlet,
    shufflenet,
)
