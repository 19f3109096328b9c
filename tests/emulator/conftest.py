"""Fixtures for the emulator tests: a running emulator plus real pyairtable/requests clients.

Every test talks to the emulator over real HTTP on 127.0.0.1, so what is tested is what
the poller will see. The rate limiter is off by default here (tests about the limit turn
it on), so that unrelated tests can send requests back to back.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

LOCAL_DIR = Path(__file__).resolve().parents[2] / "local"


def _ensure_importable() -> None:
    """Import the emulator even if the editable install predates its ``__init__.py``.

    An editable install made while ``local/airtable_emulator/`` was still empty records it
    as a namespace package, which then shadows the real package. Re-running
    ``pip install -e .`` fixes that for good; this keeps the tests runnable meanwhile.
    """
    module = importlib.import_module("airtable_emulator")
    if getattr(module, "__file__", None) is None:
        sys.path.insert(0, str(LOCAL_DIR))
        for name in [n for n in sys.modules if n.split(".")[0] == "airtable_emulator"]:
            del sys.modules[name]


_ensure_importable()

from airtable_emulator import Emulator, EmulatorConfig, donations_schema  # noqa: E402
from emulator_testkit import (  # noqa: E402  (must follow the import fix-up above)
    ALL_SCOPES,
    BASE,
    KINDS_BASE,
    TOKEN,
    Running,
    custom_schema,
)


@pytest.fixture
def start() -> Iterator[Callable[..., Running]]:
    """Factory: ``start(**config)`` runs an emulator built from ``EmulatorConfig(**config)``."""
    running: list[Running] = []

    def _start(**config: Any) -> Running:
        config.setdefault("rate_limit_rps", None)
        emu = Emulator(EmulatorConfig(**config))
        item = Running(emu=emu, url=emu.start())
        running.append(item)
        return item

    yield _start
    for item in running:
        item.close()


@pytest.fixture
def emu(start: Callable[..., Running]) -> Running:
    """The default emulator: Donations base, one all-scope token, no rate limit."""
    return start()


@pytest.fixture
def kinds(start: Callable[..., Running]) -> Running:
    """An emulator serving a base with one field of each kind, next to Donations."""
    return start(
        bases={BASE: donations_schema(), KINDS_BASE: custom_schema()},
        tokens={TOKEN: ALL_SCOPES},
    )
