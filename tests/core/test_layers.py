"""Imports inside src/supernet point one way: down the layer table (README "Layout") and without cycles.

Every import counts, also those inside functions and under TYPE_CHECKING: a lazy import still makes
the lower module know about the higher one. A package's `__init__` may import its own modules
(that is how registries fill); importing a module does not count as importing its parent package.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "supernet"

# Lowest first; a module may import modules of its own layer or of a lower one. A new module goes into the
# layer of the package it sits in; a new top-level module goes into the lowest layer whose imports it needs.
LAYERS: list[tuple[str, ...]] = [
    ("supernet.core",),  # plumbing with no config: errors, io, run directories, device, registries, plugins
    ("supernet.space",),
    ("supernet.ops",),
    ("supernet.model",),
    ("supernet.cost", "supernet.model.onnx_export"),  # onnx_export reuses cost.timing's ONNX session
    ("supernet.data",),
    ("supernet.train",),
    ("supernet.search",),
    ("supernet.analysis",),  # pure: metrics, benchmarks, ground-truth files, report, plots; nothing takes a config
    ("supernet.config",),  # the dataclasses name model and train types, so they sit above them
    ("supernet.runs",),  # objects built from a config, trained runs loaded from disk
    ("supernet.jobs",),  # one module per verb
    ("supernet.api",),
    ("supernet.cli", "supernet.__main__", "supernet"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    """The layer of the longest matching prefix; the package itself (`supernet`) matches only exactly."""
    best, best_len = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            below = module.startswith(prefix + ".") and prefix != "supernet"
            if (module == prefix or below) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS here and to the README's layer table"
    return best


def imports_of(path: Path, modules: set[str]) -> dict[str, int]:
    """The supernet modules `path` imports (module -> line), resolving `from pkg import submodule`."""
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != this:
                found.setdefault(target, node.lineno)
    return found


def import_graph() -> dict[str, dict[str, tuple[Path, int]]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {m: {t: (p, line) for t, line in imports_of(p, set(paths)).items()} for m, p in paths.items()}


def find_cycle(graph: dict[str, dict[str, tuple[Path, int]]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_module_has_a_layer():
    for module in import_graph():
        layer_of(module)


def test_imports_point_down_the_layers():
    graph = import_graph()
    wrong = []
    for module, targets in sorted(graph.items()):
        for target, (path, line) in sorted(targets.items()):
            if module.startswith(target + ".") and path.name != "__init__.py":
                continue  # a module importing its own package's names
            if layer_of(target) > layer_of(module):
                wrong.append(
                    f"{path.relative_to(SRC.parent)}:{line}: {module} (layer {layer_of(module)}) imports "
                    f"{target} (layer {layer_of(target)})"
                )
    assert not wrong, (
        "imports from a lower layer into a higher one (layer table: README 'Layout', LAYERS in this test). "
        "Move the shared piece down (a constant or helper into the lower layer) or pass it in as an argument; "
        "do not import upwards, not even inside a function:\n" + "\n".join(wrong)
    )


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, (
        "import cycle: " + " -> ".join(cycle or []) + ". Move what both need into a third, "
        "lower module, or let one side take it as an argument."
    )


def test_the_walker_sees_lazy_and_relative_imports(tmp_path):
    """The checks can fail: a function-level import and a `from pkg import module` are both edges."""
    pkg = tmp_path / "supernet"
    (pkg / "space").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "space" / "__init__.py").write_text("")
    (pkg / "space" / "a.py").write_text("def f():\n    from supernet import cli\n")
    (pkg / "cli.py").write_text("from supernet.space import a\n")
    global SRC, PACKAGE
    saved = SRC, PACKAGE
    SRC, PACKAGE = tmp_path, pkg
    try:
        graph = import_graph()
        assert graph["supernet.space.a"] == {"supernet.cli": (pkg / "space" / "a.py", 2)}
        assert find_cycle(graph) == ["supernet.cli", "supernet.space.a", "supernet.cli"]
        assert layer_of("supernet.space.a") < layer_of("supernet.cli")
    finally:
        SRC, PACKAGE = saved


def type_aliases(path: Path) -> list[str]:
    """Module-level type aliases: `Name = X[...]` or `Name = A | B`, capitalised."""
    names = []
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Subscript, ast.BinOp)):
            names += [
                t.id for t in node.targets if isinstance(t, ast.Name) and t.id[:1].isupper() and not t.id.isupper()
            ]
    return names


def test_each_type_alias_is_defined_once():
    """A type shared by several modules (e.g. `Metrics`, `BlockConfig`) is defined in the lowest one and
    imported, not written again (issue 16)."""
    where: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for name in type_aliases(path):
            where.setdefault(name, []).append(module_name(path))
    assert where["Metrics"] == ["supernet.search.objectives"]
    assert {name: modules for name, modules in where.items() if len(modules) > 1} == {}
