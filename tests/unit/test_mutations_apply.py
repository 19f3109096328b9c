"""Every mutant of `tests/faults/mutations.py` still edits the code it names.

A mutant whose anchor text moved is silently useless: the campaign cannot kill what was never
made. Read as text, no socket, nothing run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location(
    "mutations", ROOT / "tests" / "faults" / "mutations.py"
)
assert SPEC is not None and SPEC.loader is not None
MUTATIONS_MODULE = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(MUTATIONS_MODULE)
MUTATIONS = MUTATIONS_MODULE.MUTATIONS


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_the_mutant_edits_exactly_one_place(name: str) -> None:
    for file, old, new in MUTATIONS[name][1]:
        text = (ROOT / "src" / "poller" / file).read_text()
        assert text.count(old) == 1, f"{name}: its anchor is in {file} {text.count(old)} times"
        assert old != new
