"""Tokens at runtime: rotation, added tokens with chosen scopes, and whoami."""

from __future__ import annotations

import pytest
import requests
from airtable_emulator import SCOPE_READ, SCOPE_SCHEMA, USER_ID
from emulator_testkit import ALL_SCOPES, TOKEN, Running, error_of

NEW_TOKEN = "patRotatedToken01.abc"


def test_rotated_token_refuses_the_old_one_and_keeps_the_scopes(emu: Running) -> None:
    # GIVEN a client holding the current token
    old_client = emu.table()
    old_client.create({"Id": "a"})
    # WHEN the token is rotated through the control endpoint
    response = emu.http(token=None).post(
        f"{emu.url}/__emulator/tokens/rotate", json={"old": TOKEN, "new": NEW_TOKEN}
    )
    # THEN the answer does not echo the tokens
    assert response.json() == {"rotated": True}
    # AND the old token gets 401 AUTHENTICATION_REQUIRED through pyairtable
    with pytest.raises(requests.HTTPError) as caught:
        old_client.create({"Id": "b"})
    assert caught.value.response.status_code == 401
    assert error_of(caught.value.response)["type"] == "AUTHENTICATION_REQUIRED"
    # AND the new token reads, writes and reads the schema, as the old one could
    new_client = emu.table(token=NEW_TOKEN)
    new_client.create({"Id": "c"})
    assert [r["fields"]["Id"] for r in new_client.all()] == ["a", "c"]
    assert emu.api(NEW_TOKEN).whoami() == {"id": USER_ID, "scopes": sorted(ALL_SCOPES)}


def test_rotate_refuses_unknown_or_taken_tokens(emu: Running) -> None:
    # GIVEN the default token and a second one
    emu.emu.add_token("patSecond", (SCOPE_READ,))
    control = emu.http(token=None)
    url = f"{emu.url}/__emulator/tokens/rotate"
    # WHEN an unknown token is rotated, THEN 404; WHEN the new one exists, THEN 400
    assert control.post(url, json={"old": "patNope", "new": "patX"}).status_code == 404
    assert control.post(url, json={"old": TOKEN, "new": "patSecond"}).status_code == 400
    with pytest.raises(KeyError):
        emu.emu.rotate_token("patNope", "patY")
    # AND the default token still works
    assert emu.http().get(emu.records_url()).status_code == 200


def test_added_token_has_exactly_its_scopes(emu: Running) -> None:
    # GIVEN a token added with read and schema-read scopes only
    response = emu.http(token=None).post(
        f"{emu.url}/__emulator/tokens",
        json={"token": "patReader", "scopes": [SCOPE_READ, SCOPE_SCHEMA]},
    )
    assert response.json() == {"added": True}
    reader = emu.http(token="patReader")
    # WHEN it reads, reads the schema and writes
    # THEN the reads pass and the write gets 403
    assert reader.get(emu.records_url()).status_code == 200
    assert reader.get(f"{emu.url}/v0/meta/bases/appDonations00001/tables").status_code == 200
    write = reader.post(emu.records_url(), json={"fields": {"Id": "a"}})
    assert write.status_code == 403
    assert emu.api("patReader").whoami()["scopes"] == sorted([SCOPE_READ, SCOPE_SCHEMA])


def test_add_token_refuses_unknown_scopes_and_existing_tokens(emu: Running) -> None:
    control = emu.http(token=None)
    url = f"{emu.url}/__emulator/tokens"
    # GIVEN bad bodies, WHEN they are posted, THEN 400
    for body in (
        {"token": "patX", "scopes": ["data.records:wirte"]},
        {"token": TOKEN},
        {"token": "", "scopes": []},
        {"token": "patX", "scopes": "data.records:read"},
    ):
        assert control.post(url, json=body).status_code == 400, body
    # AND nothing was added
    assert emu.http(token="patX").get(emu.records_url()).status_code == 401


def test_whoami_needs_only_a_valid_token(emu: Running) -> None:
    # GIVEN a token with no scopes at all
    emu.emu.add_token("patNoScopes", ())
    # WHEN it asks who it is, THEN it is told its user id and (empty) scopes
    assert emu.api("patNoScopes").whoami() == {"id": USER_ID, "scopes": []}
    # AND an unknown token gets 401
    response = emu.http(token="patUnknown").get(f"{emu.url}/v0/meta/whoami")
    assert response.status_code == 401
