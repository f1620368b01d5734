"""Candidate blocks; importing the package registers every block type and op name."""

from supernet.ops import blocks, candidates, cells, modules, quant, shufflenet  # noqa: F401
