"""Tokens, scopes and unknown models: what a misconfigured poller would hit first."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from airtable_emulator import SCOPE_READ, SCOPE_WRITE, donations_schema
from emulator_testkit import BASE, TABLE, TOKEN, Running, error_of

FORBIDDEN = "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND"


def test_missing_token_gets_401(emu: Running) -> None:
    # GIVEN a request without an Authorization header
    # WHEN it lists records
    response = emu.http(token=None).get(emu.records_url())
    # THEN it is refused with Airtable's exact 401 body
    assert response.status_code == 401
    assert response.json() == {
        "error": {"type": "AUTHENTICATION_REQUIRED", "message": "Authentication required"}
    }


def test_unknown_token_gets_401_through_pyairtable(emu: Running) -> None:
    # GIVEN pyairtable configured with a token the emulator does not know
    table = emu.table(token="patNotARealToken")
    # WHEN it creates a record
    with pytest.raises(requests.HTTPError) as caught:
        table.create({"Id": "d-1"})
    # THEN it gets a 401 and nothing is written
    assert caught.value.response.status_code == 401
    assert emu.emu.records(BASE, TABLE) == []


def test_token_without_write_scope_can_read_but_not_write(
    start: Callable[..., Running],
) -> None:
    # GIVEN a read-only token
    running = start(
        bases={BASE: donations_schema()}, tokens={"patReadOnly": (SCOPE_READ,), TOKEN: ()}
    )
    table = running.table(token="patReadOnly")
    # WHEN it lists and then tries to create
    assert table.all() == []
    with pytest.raises(requests.HTTPError) as caught:
        table.create({"Id": "d-1"})
    # THEN the write is a 403 with the permissions error, and nothing is written
    assert caught.value.response.status_code == 403
    assert error_of(caught.value.response)["type"] == FORBIDDEN
    assert running.emu.records(BASE, TABLE) == []


def test_token_without_schema_scope_cannot_read_meta(start: Callable[..., Running]) -> None:
    # GIVEN a token that may read and write records but not read schemas
    running = start(tokens={TOKEN: (SCOPE_READ, SCOPE_WRITE)})
    # WHEN it asks for the base schema
    response = running.http().get(f"{running.url}/v0/meta/bases/{BASE}/tables")
    # THEN it gets a 403
    assert response.status_code == 403
    assert error_of(response)["type"] == FORBIDDEN


@pytest.mark.parametrize(
    "path",
    [f"/v0/{BASE}/NoSuchTable", "/v0/appNoSuchBase0001/Donations", "/v0/meta/bases/appX/tables"],
)
def test_unknown_base_or_table_gets_403(emu: Running, path: str) -> None:
    # GIVEN a valid token
    # WHEN it names a table or base that does not exist
    response = emu.http().get(emu.url + path)
    # THEN Airtable's answer is 403, not 404
    assert response.status_code == 403
    assert error_of(response)["type"] == FORBIDDEN


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/whatever"), ("GET", "/"), ("POST", f"/v0/{BASE}/{TABLE}/recX/extra")],
)
def test_unknown_path_gets_bare_not_found(emu: Running, method: str, path: str) -> None:
    # GIVEN a path that is not an Airtable endpoint
    # WHEN it is requested
    response = emu.http().request(method, emu.url + path)
    # THEN the body is the bare-string 404 envelope
    assert response.status_code == 404
    assert response.json() == {"error": "NOT_FOUND"}


def test_unknown_record_id_gets_404(emu: Running) -> None:
    # GIVEN an empty table
    table = emu.table()
    # WHEN a record id that does not exist is fetched
    with pytest.raises(requests.HTTPError) as caught:
        table.get("recDoesNotExist01")
    # THEN it is a 404 with the bare-string body
    assert caught.value.response.status_code == 404
    assert caught.value.response.json() == {"error": "NOT_FOUND"}
