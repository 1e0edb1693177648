"""The package's floors (DESIGN.md, "Layers"), enforced: no module imports from a
floor above its own, and the module import graph has no cycle. Imports inside
functions count too: a function-level import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fraudit"

# Lowest first. A module may import from its own floor or any floor below.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("fraudit", "fraudit.errors", "fraudit.resources", "fraudit.cache", "fraudit.rates", "fraudit.artifacts",
     "fraudit.printable", "fraudit.pictures", "fraudit.parallel"),
    ("fraudit.models",),
    ("fraudit.formats", "fraudit.sources"),
    ("fraudit.faces", "fraudit.triggers"),
    ("fraudit.zoo",),
    ("fraudit.bank", "fraudit.pairing", "fraudit.search"),
    ("fraudit.detectors",),
    ("fraudit.loading", "fraudit.audit"),
    ("fraudit.report",),
    ("fraudit.cli", "fraudit.__main__"),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def floor_of(module: str) -> int:
    """The floor of the most specific prefix that names ``module``."""
    best = None
    for level, prefixes in enumerate(FLOORS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[1])):
                best = (level, prefix)
    if best is None:
        raise AssertionError(f"{module} is on no floor: add it to FLOORS and DESIGN.md")
    return best[0]


def imports_of(module: str) -> set[str]:
    """fraudit modules that ``module`` imports, anywhere in its body. ``from a import b``
    depends on ``a.b`` when that is a module, else on ``a``."""
    tree = ast.parse(MODULES[module].read_text())
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imports_of(module) for module in MODULES}


def upward(graph: dict[str, set[str]], module: str) -> list[str]:
    return sorted(name for name in graph[module] if floor_of(name) > floor_of(module))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Depth-first search; a back edge closes a cycle, returned as the path around it."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for name in sorted(graph[module]):
            if state.get(name) == 1:
                return stack[stack.index(name):] + [name]
            if name not in state and (cycle := visit(name)):
                return cycle
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_every_module_is_on_a_floor() -> None:
    for module in MODULES:
        floor_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_from_a_floor_above(module: str) -> None:
    assert not upward(GRAPH, module), f"{module} (floor {floor_of(module)}) imports from above: {upward(GRAPH, module)}"


def test_no_import_cycle() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_the_rules_can_fail() -> None:
    """The checks above must be able to fail: fed the tangles this layout removed (a
    detector-importing embedder module, a registry and an architecture importing each
    other), they report them."""
    tangled = {
        "fraudit.pairing.embedders": {"fraudit.detectors.file_safety"},
        "fraudit.detectors.file_safety": set(),
        "fraudit.models.registry": {"fraudit.models.reference"},
        "fraudit.models.reference": {"fraudit.models.registry"},
    }
    assert upward(tangled, "fraudit.pairing.embedders") == ["fraudit.detectors.file_safety"]
    assert find_cycle(tangled) == ["fraudit.models.reference", "fraudit.models.registry", "fraudit.models.reference"]
    # and the real graph is read from the source: the sweep stamps triggers from their own module
    assert "fraudit.triggers" in GRAPH["fraudit.pairing.sweep"]
    assert "fraudit.zoo.triggers" not in MODULES
