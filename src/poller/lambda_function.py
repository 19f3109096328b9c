"""The Lambda entry point (the template's `Handler: lambda_function.lambda_handler`). `sam
build` packages `src/poller` as the task root (`CodeUri`), where this directory is no
subfolder: it is first loaded as the package `poller`, under which every module imports its
neighbours."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if "poller" not in sys.modules:  # the task root; in a checkout the package is already loaded
    _root = Path(__file__).resolve().parent
    _spec = importlib.util.spec_from_file_location(
        "poller", _root / "__init__.py", submodule_search_locations=[str(_root)]
    )
    assert _spec is not None and _spec.loader is not None
    _package = importlib.util.module_from_spec(_spec)
    sys.modules["poller"] = _package
    _spec.loader.exec_module(_package)

from poller.handler import lambda_handler

__all__ = ["lambda_handler"]
