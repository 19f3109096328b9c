"""Permission levels per token and base, and GET /v0/meta/bases that lists them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from airtable_emulator import SCOPE_READ, SCOPE_WRITE, donations_schema
from emulator_testkit import BASE, TABLE, TOKEN, Running, error_of

BASES = [f"appPermBase{n:06d}" for n in range(5)]
FORBIDDEN = "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND"


@pytest.fixture
def shared(start: Callable[..., Running]) -> Running:
    """BASE with one record, and five more bases named after their index."""
    bases = {BASE: donations_schema()}
    for n, base_id in enumerate(BASES):
        bases[base_id] = {"name": f"Base {n}", **donations_schema()}
    running = start(bases=bases)
    running.table().create({"Id": "a"})
    return running


def status_of(call: Callable[[], object]) -> int:
    try:
        call()
    except requests.HTTPError as error:
        assert error_of(error.response)["type"] == FORBIDDEN
        return error.response.status_code
    return 200


def test_bases_lists_every_reachable_base_with_its_level(shared: Running) -> None:
    # GIVEN levels read, edit and none on three bases (create elsewhere)
    shared.emu.set_permission(TOKEN, BASES[0], "read")
    shared.emu.set_permission(TOKEN, BASES[1], "edit")
    shared.emu.set_permission(TOKEN, BASES[2], "none")
    # WHEN pyairtable lists the bases
    bases = shared.api().bases()
    # THEN the base at none is left out and the others carry their levels and names
    assert [(b.id, b.permission_level) for b in bases] == [
        (BASE, "create"),
        (BASES[0], "read"),
        (BASES[1], "edit"),
        (BASES[3], "create"),
        (BASES[4], "create"),
    ]
    assert [b.name for b in bases][:2] == [BASE, "Base 0"]
    assert shared.emu.permission(TOKEN, BASES[2]) == "none"
    # AND the name is the base's, not part of its table schema
    assert set(shared.emu.schema(BASES[0])) == {"tables"}


def test_a_base_defined_over_http_is_listed_with_its_name(shared: Running) -> None:
    # GIVEN a base defined through the control API with a name
    control = shared.http(token=None)
    schema = {"name": "Late base", **donations_schema()}
    served = control.put(f"{shared.url}/__emulator/bases/appLateBase000001", json=schema).json()
    # WHEN the bases are listed
    listed = {b.id: b.name for b in shared.api().bases()}
    # THEN it is there, by its name, and its served schema holds only tables
    assert listed["appLateBase000001"] == "Late base" and set(served) == {"tables"}


def test_bases_pages_with_an_offset(start: Callable[..., Running]) -> None:
    # GIVEN five bases and a page size of 2
    running = start(bases={b: donations_schema() for b in BASES}, bases_page_size=2)
    session = running.http()
    # WHEN the first page is read over HTTP
    first = session.get(f"{running.url}/v0/meta/bases").json()
    # THEN it holds two bases and an offset to the next page
    assert [b["id"] for b in first["bases"]] == BASES[:2] and "offset" in first
    second = session.get(f"{running.url}/v0/meta/bases", params={"offset": first["offset"]})
    assert [b["id"] for b in second.json()["bases"]] == BASES[2:4]
    # AND pyairtable follows the offsets to the end
    assert [b.id for b in running.api().bases()] == BASES
    # AND a made-up offset is a 422
    bad = session.get(f"{running.url}/v0/meta/bases", params={"offset": "itrNope"})
    assert bad.status_code == 422 and error_of(bad)["type"] == "INVALID_OFFSET_VALUE"


def test_bases_needs_the_schema_scope(shared: Running) -> None:
    # GIVEN a token with the data scopes only
    shared.emu.add_token("patDataOnly", (SCOPE_READ, SCOPE_WRITE))
    # WHEN it lists bases, THEN it gets a 403, while whoami answers with its scopes
    assert status_of(lambda: shared.api("patDataOnly").bases()) == 403
    assert shared.api("patDataOnly").whoami()["scopes"] == sorted([SCOPE_READ, SCOPE_WRITE])


def test_a_base_at_none_is_out_of_reach_like_an_unknown_base(shared: Running) -> None:
    # GIVEN the token at none on BASE
    shared.emu.set_permission(TOKEN, BASE, "none")
    api = shared.api()
    # WHEN data and meta requests are sent to it
    # THEN each gets the 403 an unknown base gets
    assert status_of(lambda: api.table(BASE, TABLE).all()) == 403
    assert status_of(lambda: api.base(BASE).schema(force=True)) == 403
    assert status_of(lambda: api.table("appUnknown0000001", TABLE).all()) == 403
    # AND they do not count against the base's rate limit
    assert shared.emu.stats.base(BASE).accepted == 1  # the fixture's create


@pytest.mark.parametrize("level", ["read", "comment"])
def test_read_and_comment_read_but_do_not_write(shared: Running, level: str) -> None:
    # GIVEN the token at read (or comment) on BASE
    shared.emu.set_permission(TOKEN, BASE, level)
    api = shared.api()
    table = api.table(BASE, TABLE)
    record_id = shared.emu.records(BASE, TABLE)[0]["id"]
    # WHEN it reads records and the schema, THEN they answer
    assert [r["fields"]["Id"] for r in table.all()] == ["a"]
    assert table.get(record_id)["id"] == record_id
    assert api.base(BASE).schema().table(TABLE).name == TABLE
    # WHEN it writes, deletes or changes the schema, THEN each is a 403
    assert status_of(lambda: table.create({"Id": "b"})) == 403
    assert status_of(lambda: table.update(record_id, {"Id": "c"})) == 403
    assert status_of(lambda: table.batch_upsert([{"fields": {"Id": "d"}}], ["Id"])) == 403
    assert status_of(lambda: table.delete(record_id)) == 403
    assert status_of(lambda: table.create_field("New", "singleLineText")) == 403
    assert [r["fields"]["Id"] for r in shared.emu.records(BASE, TABLE)] == ["a"]


def test_edit_writes_records_but_not_the_schema(shared: Running) -> None:
    # GIVEN the token at edit on BASE
    shared.emu.set_permission(TOKEN, BASE, "edit")
    api = shared.api()
    table = api.table(BASE, TABLE)
    # WHEN it writes and deletes records, THEN they are applied
    created = table.create({"Id": "b"})
    table.delete(created["id"])
    # WHEN it creates a field or a table, THEN each is a 403
    assert status_of(lambda: table.create_field("New", "singleLineText")) == 403
    fields = [{"name": "Name", "type": "singleLineText"}]
    assert status_of(lambda: api.base(BASE).create_table("T", fields)) == 403


def test_levels_follow_a_rotated_token(shared: Running) -> None:
    # GIVEN the token at read on BASE
    shared.emu.set_permission(TOKEN, BASE, "read")
    # WHEN the token is rotated
    shared.emu.rotate_token(TOKEN, "patRotated")
    # THEN the new token has the level
    assert status_of(lambda: shared.api("patRotated").table(BASE, TABLE).create({})) == 403


def test_permissions_endpoint_and_its_errors(shared: Running) -> None:
    # GIVEN a control session
    control = shared.http(token=None)
    endpoint = f"{shared.url}/__emulator/permissions"
    # WHEN a level is set over HTTP
    response = control.post(endpoint, json={"token": TOKEN, "base": BASE, "level": "none"})
    # THEN it is enforced
    assert response.json() == {"base": BASE, "level": "none"}
    assert shared.http().get(shared.records_url()).status_code == 403
    # AND an unknown level is 400, an unknown token or base 404
    bad_level = {"token": TOKEN, "base": BASE, "level": "owner"}
    assert control.post(endpoint, json=bad_level).status_code == 400
    unknown_token = {"token": "patNope", "base": BASE, "level": "read"}
    assert control.post(endpoint, json=unknown_token).status_code == 404
    unknown_base = {"token": TOKEN, "base": "appNope", "level": "read"}
    assert control.post(endpoint, json=unknown_base).status_code == 404
