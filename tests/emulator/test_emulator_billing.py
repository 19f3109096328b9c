"""The monthly billing block: every data request gets a 429 that waiting does not cure,
while the meta API keeps answering."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from airtable_emulator import ALL_BASES, donations_schema
from emulator_testkit import BASE, TABLE, FakeClock, Running

OTHER = "appOtherBase00001"
BILLING_BODY = {
    "errors": [
        {
            "error": "PUBLIC_API_BILLING_LIMIT_EXCEEDED",
            "message": "API billing plan limit exceeded. You've reached the maximum number of"
            " requests allowed for this month.",
        }
    ]
}


@pytest.fixture
def blocked(start: Callable[..., Running]) -> Running:
    """Two bases, a 5 req/s limit on a fake clock, one record, and BASE blocked."""
    running = start(
        bases={BASE: donations_schema(), OTHER: donations_schema()},
        rate_limit_rps=5,
        lockout_seconds=30,
        clock=FakeClock(),
    )
    running.table().create({"Id": "kept"})
    running.emu.set_billing_block(BASE, True)
    return running


def test_every_data_request_gets_the_billing_429(blocked: Running) -> None:
    # GIVEN a blocked base and a record in it
    session, url = blocked.http(), blocked.records_url()
    record_id = blocked.emu.records(BASE, TABLE)[0]["id"]
    # WHEN every kind of data request is sent
    responses = [
        session.get(url),
        session.post(f"{url}/listRecords", json={}),
        session.get(f"{url}/{record_id}"),
        session.post(url, json={"records": [{"fields": {"Id": "x"}}]}),
        session.patch(url, json={"records": [{"id": record_id, "fields": {"Id": "y"}}]}),
        session.delete(url, params={"records[]": record_id}),
    ]
    # THEN each gets the billing 429 body, and nothing is written
    assert [r.status_code for r in responses] == [429] * 6
    assert all(r.json() == BILLING_BODY for r in responses)
    assert [r["fields"]["Id"] for r in blocked.emu.records(BASE, TABLE)] == ["kept"]


def test_meta_requests_keep_answering_and_no_lockout_starts(blocked: Running) -> None:
    # GIVEN a blocked base
    api, session = blocked.api(), blocked.http()
    # WHEN more data requests than the rate limit allows are sent, then meta requests
    statuses = [session.get(blocked.records_url()).status_code for _ in range(8)]
    # THEN all got the billing 429, none started a lockout or counted in the window
    assert statuses == [429] * 8
    stats = blocked.emu.stats
    assert (stats.lockouts, stats.throttled, stats.billing_blocked) == (0, 0, 8)
    base = stats.base(BASE)
    assert (base.billing_blocked, base.rate_limited, base.accepted) == (8, 0, 1)
    assert api.whoami()["id"]
    assert api.base(BASE).schema().table(TABLE).name == TABLE
    assert [b.id for b in api.bases()] == [BASE, OTHER]
    # AND the other base is not blocked
    assert session.get(blocked.records_url(base=OTHER)).status_code == 200


def test_lifting_the_block_serves_data_again(blocked: Running) -> None:
    # GIVEN a blocked base, WHEN the block is lifted
    blocked.emu.set_billing_block(BASE, False)
    # THEN data requests are served
    assert [r["fields"]["Id"] for r in blocked.table().all()] == ["kept"]


def test_star_blocks_every_base_and_star_off_lifts_every_block(blocked: Running) -> None:
    # GIVEN BASE blocked, WHEN every base is blocked
    blocked.emu.set_billing_block(ALL_BASES, True)
    session = blocked.http()
    # THEN the other base is blocked too, and unblocking one base does not beat the star
    assert session.get(blocked.records_url(base=OTHER)).status_code == 429
    blocked.emu.set_billing_block(OTHER, False)
    assert session.get(blocked.records_url(base=OTHER)).status_code == 429
    # WHEN the star is lifted, THEN every block is gone
    blocked.emu.set_billing_block(ALL_BASES, False)
    assert session.get(blocked.records_url()).status_code == 200
    assert session.get(blocked.records_url(base=OTHER)).status_code == 200


def test_the_other_envelope_can_be_chosen(blocked: Running) -> None:
    # GIVEN the block answered with the usual error envelope
    blocked.emu.set_billing_block(BASE, True, shape="error")
    # WHEN a data request is sent
    response = blocked.http().get(blocked.records_url())
    # THEN the type is in error.type
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "PUBLIC_API_BILLING_LIMIT_EXCEEDED"
    assert response.json()["error"]["message"] == BILLING_BODY["errors"][0]["message"]


def test_billing_endpoint_blocks_and_lifts(emu: Running) -> None:
    # GIVEN a control session
    control = emu.http(token=None)
    session = emu.http()
    # WHEN every base is blocked over HTTP (the star in the path)
    response = control.post(f"{emu.url}/__emulator/billing-block/*", json={"on": True})
    # THEN data requests get the billing 429
    assert response.status_code == 200
    assert session.get(emu.records_url()).json() == BILLING_BODY
    assert emu.emu.conditions()["billing_block"] == ["*"]
    # WHEN it is lifted, THEN data is served
    control.post(f"{emu.url}/__emulator/billing-block/*", json={"on": False})
    assert session.get(emu.records_url()).status_code == 200
    # AND bad bodies are 400, unknown bases 404
    endpoint = f"{emu.url}/__emulator/billing-block/{BASE}"
    assert control.post(endpoint, json={"on": "yes"}).status_code == 400
    assert control.post(endpoint, json={"on": True, "shape": "html"}).status_code == 400
    assert (
        control.post(f"{emu.url}/__emulator/billing-block/appNope", json={"on": True}).status_code
        == 404
    )
