"""The emulator package's modules import one another without a cycle, at any level
(TYPE_CHECKING blocks and imports inside functions count too): the server and the control
endpoints know the emulator only through interfaces."""

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


TYPE_SETS = {
    "TEXT_TYPES",
    "NUMBER_TYPES",
    "SELECT_TYPES",
    "DATE_TYPES",
    "LINK_TYPE",
    "ATTACHMENT_TYPE",
    "CHECKBOX_TYPE",
    "COMPUTED_TYPES",
    "MERGEABLE_TYPES",
    "PRIMARY_TYPES",
    "VERSION_TYPES",
}


def test_field_type_sets_come_from_the_poller_only() -> None:
    # GIVEN every module of the package
    defined: list[str] = []
    imported: set[str] = set()
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # WHEN its assignments and imports are read
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = {t.id for t in targets if isinstance(t, ast.Name)}
                defined += [f"{path.stem}.{name}" for name in sorted(names & TYPE_SETS)]
            if isinstance(node, ast.ImportFrom) and node.module == "poller.fieldtypes":
                imported.update(alias.name for alias in node.names)
    # THEN none defines a type set of its own, and the sets it uses come from poller.fieldtypes
    assert defined == []
    assert {"TEXT_TYPES", "COMPUTED_TYPES", "MERGEABLE_TYPES", "PRIMARY_TYPES"} <= imported
