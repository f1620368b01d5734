"""supernet: one-shot weight-sharing neural architecture search in PyTorch, as a library and a command.

    import supernet
    space = supernet.module_space([supernet.LayerChoice([MyConv3, MyConv5, "id"])] * 4, (1, 28, 28), 10)
    net = supernet.build_supernet(space)
    supernet.fit(net, train_set, epochs=5)
    result = supernet.search_arch(net, val_set, train_data=train_set, max_macs="2M")
    model = supernet.export(net, result.best, "export/")

`import supernet` is cheap (torch is not imported): every name below is imported on first use (PEP 562
module `__getattr__`). docs/api.md walks through it; `examples/quickstart.py` runs it end to end.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any


def _version() -> str:
    """The installed distribution's version, else (a source checkout on PYTHONPATH) pyproject.toml's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("supernet")
    except PackageNotFoundError:
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "0+unknown"


__version__ = _version()

# public name -> the module that defines it (imported when the name is first used). No name may be that of a
# subpackage (`train`, `search`, `cost`...): importing `supernet.search` binds the module to that attribute.
_LAZY: dict[str, str] = {
    # spaces and architectures
    "Arch": "supernet.space",
    "SearchSpace": "supernet.space",
    "LayerSpec": "supernet.space",
    "create_space": "supernet.space",
    "list_spaces": "supernet.space",
    "register_space": "supernet.space",
    # a space over your own modules
    "LayerChoice": "supernet.ops.modules",
    "module_space": "supernet.api",
    # supernets and stand-alone models
    "SupernetOptions": "supernet.model.supernet",
    "MultiPath": "supernet.model.supernet",
    "StandaloneNet": "supernet.model.standalone",
    # costs
    "CostTable": "supernet.cost",
    "count_macs": "supernet.cost",
    "count_params": "supernet.cost",
    # search
    "Constraint": "supernet.search",
    "Objective": "supernet.search",
    "Problem": "supernet.search",
    "SearchResult": "supernet.search",
    "Strategy": "supernet.search",
    "list_strategies": "supernet.search",
    # the library functions
    "build_supernet": "supernet.api",
    "fit": "supernet.api",
    "TrainResult": "supernet.api",
    "TorchBatches": "supernet.api",
    "OptimConfig": "supernet.train.loop",
    "evaluator": "supernet.api",
    "constraints": "supernet.api",
    "make_strategy": "supernet.api",
    "search_arch": "supernet.api",
    "arch_cost": "supernet.api",
    "export": "supernet.api",
    "load_exported": "supernet.api",
    # ranking analysis
    "kendall_tau": "supernet.analysis.metrics",
    "ranking_metrics": "supernet.analysis.metrics",
    # config-driven verbs (what the CLI calls)
    "load_config": "supernet.config.schema",
    "train_supernet": "supernet.jobs.train",
    "search_supernet": "supernet.jobs.search",
    "export_arch": "supernet.jobs.export",
    "load_supernet": "supernet.runs.load",
    # errors
    "SupernetError": "supernet.core.errors",
    "MissingExtra": "supernet.core.extras",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'supernet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what a type checker and an IDE see; at run time the names above load lazily
    from supernet.analysis.metrics import kendall_tau, ranking_metrics  # noqa: F401
    from supernet.api import (  # noqa: F401
        TorchBatches,
        TrainResult,
        arch_cost,
        build_supernet,
        constraints,
        evaluator,
        export,
        fit,
        load_exported,
        make_strategy,
        module_space,
        search_arch,
    )
    from supernet.config.schema import load_config  # noqa: F401
    from supernet.core.errors import SupernetError  # noqa: F401
    from supernet.core.extras import MissingExtra  # noqa: F401
    from supernet.cost import CostTable, count_macs, count_params  # noqa: F401
    from supernet.jobs.export import export_arch  # noqa: F401
    from supernet.jobs.search import search_supernet  # noqa: F401
    from supernet.jobs.train import train_supernet  # noqa: F401
    from supernet.model.standalone import StandaloneNet  # noqa: F401
    from supernet.model.supernet import MultiPath, SupernetOptions  # noqa: F401
    from supernet.ops.modules import LayerChoice  # noqa: F401
    from supernet.runs.load import load_supernet  # noqa: F401
    from supernet.search import Constraint, Objective, Problem, SearchResult, Strategy, list_strategies  # noqa: F401
    from supernet.space import Arch, LayerSpec, SearchSpace, create_space, list_spaces, register_space  # noqa: F401
    from supernet.train.loop import OptimConfig  # noqa: F401
