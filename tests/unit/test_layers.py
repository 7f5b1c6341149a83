"""The house rules of docs/architecture.md, checked on the source: imports only go downward.

The reconciler's layers, bottom to top: the CRD, the API (models, naming, parsing, conversion,
validation), the settings, the pure builders and the pure status, the controller, the runtime, the
CLI. A module may import its own package's modules and any lower layer, never a higher one or a
sibling of its own height (the builders and the status know nothing of each other); no import,
module-level or inside a function, may close a cycle. The fake cluster is independent of the
product, and nothing outside tests/ imports tests.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
CHARM_MODULES = {path.stem for path in SRC.glob("*.py")}

# The height of each part of the reconciler package; `reconciler` itself holds only the version.
LAYERS = {
    "reconciler": 0,
    "reconciler.crds": 0,
    "reconciler.api": 1,
    "reconciler.config": 2,
    "reconciler.resources": 3,
    "reconciler.status": 3,
    "reconciler.controller": 4,
    "reconciler.runtime": 5,
    "reconciler.cli": 6,
}


def module_name(path: Path, base: Path) -> str:
    parts = path.relative_to(base).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def python_files(*folders: Path) -> Iterator[Path]:
    for folder in folders:
        yield from (p for p in sorted(folder.rglob("*.py")) if "__pycache__" not in p.parts)


def imports(path: Path, module: str) -> Iterator[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import in the file, relative ones
    resolved against `module`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in top_level
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # `from package import module` imports the module, not only the package.
            for alias in node.names:
                yield f"{target}.{alias.name}", node.lineno, id(node) in top_level
            yield target, node.lineno, id(node) in top_level


def product_modules() -> dict[str, Path]:
    return {module_name(path, SRC): path for path in python_files(SRC / "reconciler")}


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The known module `name` refers to (a symbol's module when it names a symbol)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def layer_of(module: str) -> tuple[str, int]:
    part = ".".join(module.split(".")[:2])
    return part, LAYERS[part]


def reconciler_graph() -> dict[str, set[str]]:
    known = product_modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for target, _, _ in imports(path, name):
            found = resolve(target, known)
            if found and found != name and not name.startswith(f"{found}."):
                graph[name].add(found)
    return graph


def test_every_part_of_the_reconciler_has_a_layer():
    for module in product_modules():
        assert ".".join(module.split(".")[:2]) in LAYERS, f"{module} belongs to no layer"


def test_the_reconciler_imports_only_downward():
    wrong = []
    for module, targets in reconciler_graph().items():
        part, height = layer_of(module)
        for target in targets:
            target_part, target_height = layer_of(target)
            if target_part != part and target_height >= height:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_the_reconciler_has_no_import_cycle():
    graph = reconciler_graph()
    cycles = []
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


@pytest.mark.parametrize("path", list(python_files(SRC)), ids=lambda p: str(p.relative_to(ROOT)))
def test_product_code_imports_at_module_level(path: Path):
    """An import inside a function is how a cycle hides; the product has none."""
    late = [line for _, line, top in imports(path, module_name(path, SRC)) if not top]
    assert late == [], f"{path.name}: imports inside functions at lines {late}"


def test_the_reconciler_never_imports_the_charm():
    offenders = [
        f"{module} imports {target}"
        for module, path in product_modules().items()
        for target, _, _ in imports(path, module)
        if target.split(".")[0] in CHARM_MODULES
    ]
    assert offenders == []


def test_the_fake_cluster_is_independent_of_the_product():
    product = {"reconciler", *CHARM_MODULES}
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in python_files(ROOT / "fakekube")
        for target, line, _ in imports(path, module_name(path, ROOT))
        if target.split(".")[0] in product
    ]
    assert offenders == []


def test_nothing_outside_the_tests_imports_them():
    folders = [SRC, ROOT / "fakekube", ROOT / "scripts", ROOT / "benchmarks"]
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in python_files(*[f for f in folders if f.exists()])
        for target, line, _ in imports(path, module_name(path, path.parent))
        if target.split(".")[0] == "tests"
    ]
    assert offenders == []
