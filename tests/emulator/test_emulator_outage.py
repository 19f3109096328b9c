"""Outages: a proxy in front of Airtable answers with an HTML page, not a JSON error."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from airtable_emulator import ALL_BASES, donations_schema
from emulator_testkit import BASE, FakeClock, Running

OTHER = "appOtherBase00001"
PAGE_503 = (
    "<html><head><title>503 Service Temporarily Unavailable</title></head><body><center>"
    "<h1>503 Service Temporarily Unavailable</h1></center><hr><center>nginx</center>"
    "</body></html>"
)


@pytest.fixture
def two_bases(start: Callable[..., Running]) -> Running:
    return start(
        bases={BASE: donations_schema(), OTHER: donations_schema()},
        rate_limit_rps=5,
        lockout_seconds=30,
        clock=FakeClock(),
    )


def test_an_outage_answers_every_request_with_an_html_page(two_bases: Running) -> None:
    # GIVEN an outage of every base
    two_bases.emu.set_outage(ALL_BASES, True)
    session = two_bases.http()
    # WHEN data, meta, whoami and bases-list requests are sent
    urls = [
        two_bases.records_url(),
        f"{two_bases.url}/v0/meta/bases/{BASE}/tables",
        f"{two_bases.url}/v0/meta/whoami",
        f"{two_bases.url}/v0/meta/bases",
    ]
    responses = [session.get(url) for url in urls]
    # THEN each gets a 503 with an nginx-style HTML body that is not JSON
    for response in responses:
        assert response.status_code == 503
        assert response.headers["Content-Type"] == "text/html"
        assert response.text == PAGE_503
        with pytest.raises(requests.JSONDecodeError):
            response.json()
    # AND pyairtable raises a plain HTTPError for it
    with pytest.raises(requests.HTTPError):
        two_bases.table().all()


def test_outage_requests_are_not_counted_by_the_rate_limiter(two_bases: Running) -> None:
    # GIVEN an outage of BASE
    two_bases.emu.set_outage(BASE, True)
    session = two_bases.http()
    # WHEN ten requests hit it, and the outage ends
    assert {session.get(two_bases.records_url()).status_code for _ in range(10)} == {503}
    two_bases.emu.set_outage(BASE, False)
    # THEN five requests in the same second are all served (the window is empty)
    assert [session.get(two_bases.records_url()).status_code for _ in range(5)] == [200] * 5
    stats = two_bases.emu.stats.base(BASE)
    assert (stats.outage_answers, stats.data_requests, stats.lockouts) == (10, 15, 0)


def test_a_data_outage_of_one_base_spares_meta_and_other_bases(two_bases: Running) -> None:
    # GIVEN a 502 outage of BASE's data requests only
    two_bases.emu.set_outage(BASE, True, status=502, scope="data")
    session = two_bases.http()
    # WHEN data and meta requests are sent
    data = session.get(two_bases.records_url())
    # THEN data gets the 502 page, meta and the other base answer
    assert data.status_code == 502
    assert "<title>502 Bad Gateway</title>" in data.text
    assert session.get(f"{two_bases.url}/v0/meta/bases/{BASE}/tables").status_code == 200
    assert session.get(two_bases.records_url(base=OTHER)).status_code == 200


def test_a_base_outage_does_not_touch_whoami(two_bases: Running) -> None:
    # GIVEN an outage of one base (scope all)
    two_bases.emu.set_outage(BASE, True)
    # WHEN whoami is called, THEN it answers (it belongs to no base)
    assert two_bases.api().whoami()["id"]


def test_star_off_ends_every_outage(two_bases: Running) -> None:
    # GIVEN outages of one base and of every base
    two_bases.emu.set_outage(BASE, True, status=504)
    two_bases.emu.set_outage(ALL_BASES, True)
    # WHEN the star is turned off
    two_bases.emu.set_outage(ALL_BASES, False)
    # THEN nothing is out any more
    assert two_bases.emu.conditions()["outages"] == {}
    assert two_bases.http().get(two_bases.records_url()).status_code == 200


def test_outage_endpoint_starts_and_ends_it(emu: Running) -> None:
    # GIVEN a control session
    control = emu.http(token=None)
    endpoint = f"{emu.url}/__emulator/outage/{BASE}"
    # WHEN an outage is started over HTTP with a status and scope
    response = control.post(endpoint, json={"on": True, "status": 500, "scope": "data"})
    # THEN it is enforced
    assert response.json() == {"base": BASE, "on": True, "status": 500, "scope": "data"}
    answer = emu.http().get(emu.records_url())
    assert answer.status_code == 500 and "500 Internal Server Error" in answer.text
    # WHEN it is ended, THEN requests are served
    assert control.post(endpoint, json={"on": False}).status_code == 200
    assert emu.http().get(emu.records_url()).status_code == 200


@pytest.mark.parametrize(
    "body", [{"on": True, "status": 200}, {"on": True, "scope": "meta"}, {"status": 503}]
)
def test_outage_endpoint_refuses_bad_bodies(emu: Running, body: dict[str, object]) -> None:
    # GIVEN a bad outage body, WHEN it is posted, THEN it is a 400 and nothing changes
    response = emu.http(token=None).post(f"{emu.url}/__emulator/outage/{BASE}", json=body)
    assert response.status_code == 400
    assert emu.emu.conditions()["outages"] == {}
