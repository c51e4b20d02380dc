"""The shared library's layers: no import cycle among its modules (lazy
imports inside functions and imports for type checking count too), and the
DICOM byte layer knows nothing of de-identification."""

from __future__ import annotations

import ast
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"


def module_name(path: Path) -> str:
    parts = path.relative_to(SHARED).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("relay_shared", *parts))


def imports_of(path: Path, name: str) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in SHARED.rglob("*.py") if "migrations" not in p.parts}
    return {name: {m for m in imports_of(path, name) if m in paths and m != name}
            for name, path in paths.items()}


def cycle_in(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def without_packages(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's __init__ re-exports its modules: importing `relay_shared.deid`
    from inside it is the module's own business, not a cycle between modules."""
    packages = {n for n in edges if (SHARED / n.replace("relay_shared", "", 1).strip(".")
                                     .replace(".", "/") / "__init__.py").exists()}
    return {n: {m for m in e if m not in packages} for n, e in edges.items()}


def test_no_import_cycle_in_shared() -> None:
    assert cycle_in(without_packages(graph())) is None


def test_the_byte_layer_does_not_import_deidentification() -> None:
    for name, targets in graph().items():
        if name.startswith("relay_shared.dicom"):
            assert not {t for t in targets if t.startswith("relay_shared.deid")}, name
