"""The emulator package's modules import one another without a cycle (issue: control,
emulator and server used to import each other, hidden behind TYPE_CHECKING and a late
import inside a function)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import airtable_emulator

PACKAGE = Path(airtable_emulator.__file__).parent


def _internal_imports(path: Path) -> set[str]:
    """Every package module ``path`` imports, at any level (TYPE_CHECKING and functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "airtable_emulator."
        ):
            found.add((node.module or "").split(".")[1])
    return found


def test_package_modules_form_no_import_cycle() -> None:
    # GIVEN every module of the package except its two entry points
    modules = {
        path.stem: path
        for path in PACKAGE.glob("*.py")
        if path.stem not in ("__init__", "__main__")
    }
    graph = {name: _internal_imports(path) & modules.keys() for name, path in modules.items()}
    # WHEN their imports are sorted topologically
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as error:  # THEN there is no cycle
        raise AssertionError(f"import cycle: {error.args[1]}") from None
    # AND server and control know the emulator only through interfaces
    assert "emulator" not in graph["server"] | graph["control"]
    assert order.index("wire") < order.index("server") < order.index("emulator")
