"""Cost of stand-alone models: exact MACs and parameter counts from per-candidate tables."""

from supernet.cost.counter import count_macs, count_params, output_shape
from supernet.cost.table import Cost, CostTable
from supernet.cost.units import format_quantity, parse_duration_ms, parse_quantity

__all__ = [
    "Cost",
    "CostTable",
    "count_macs",
    "count_params",
    "format_quantity",
    "output_shape",
    "parse_duration_ms",
    "parse_quantity",
]
