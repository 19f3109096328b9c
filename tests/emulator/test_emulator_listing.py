"""Reading back: pagination, list options, listRecords and the schema endpoint."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from airtable_emulator import donations_schema
from emulator_testkit import BASE, TABLE, Running, error_of
from pyairtable.formulas import OR, Field, match


def fill(emu: Running, count: int) -> list[str]:
    """Create ``count`` records (10 per request) and return their ids in order."""
    return [r["id"] for r in emu.table().batch_create([{"Id": f"{n:04d}"} for n in range(count)])]


def test_all_pages_through_more_than_100_records(emu: Running) -> None:
    # GIVEN 250 records
    ids = fill(emu, 250)
    emu.emu.reset_stats()
    # WHEN pyairtable reads them all
    records = emu.table().all()
    # THEN it gets all of them in creation order, in three pages of at most 100
    assert [r["id"] for r in records] == ids
    assert emu.emu.stats.requests == 3


def test_pages_carry_an_offset_only_while_more_remain(emu: Running) -> None:
    # GIVEN 150 records
    fill(emu, 150)
    session = emu.http()
    # WHEN the first page is read
    first = session.get(emu.records_url()).json()
    # THEN it holds 100 records and an opaque offset
    assert len(first["records"]) == 100
    assert isinstance(first["offset"], str)
    # WHEN the offset is followed
    second = session.get(emu.records_url(), params={"offset": first["offset"]}).json()
    # THEN the last 50 come back with no offset
    assert len(second["records"]) == 50
    assert "offset" not in second


def test_records_created_while_paging_do_not_shift_pages(emu: Running) -> None:
    # GIVEN a listing of 15 records paused after its first page of 10
    ids = fill(emu, 15)
    session = emu.http()
    first = session.get(emu.records_url(), params={"pageSize": 10}).json()
    # WHEN a record is created, then the listing resumes
    fill(emu, 1)
    rest = session.get(emu.records_url(), params={"pageSize": 10, "offset": first["offset"]})
    # THEN the listing is a consistent snapshot: the 15 original records, once each
    assert [r["id"] for r in first["records"] + rest.json()["records"]] == ids


@pytest.mark.parametrize(("page_size", "max_records"), [(7, None), (5, 12), (100, 3)])
def test_page_size_and_max_records(emu: Running, page_size: int, max_records: int | None) -> None:
    # GIVEN 30 records
    ids = fill(emu, 30)
    options: dict[str, Any] = {"page_size": page_size}
    if max_records:
        options["max_records"] = max_records
    # WHEN they are read page by page
    pages = list(emu.table().iterate(**options))
    # THEN no page is larger than page_size and maxRecords caps the total
    assert all(len(page) <= page_size for page in pages)
    assert [r["id"] for page in pages for r in page] == ids[: max_records or 30]


@pytest.mark.parametrize("page_size", ["0", "101", "x"])
def test_invalid_page_size_is_refused(emu: Running, page_size: str) -> None:
    # GIVEN a pageSize outside 1..100
    # WHEN a listing asks for it
    response = emu.http().get(emu.records_url(), params={"pageSize": page_size})
    # THEN it is a 422
    assert response.status_code == 422


def test_made_up_offset_is_refused(emu: Running) -> None:
    # GIVEN an offset the emulator never issued
    # WHEN a listing uses it
    response = emu.http().get(emu.records_url(), params={"offset": "itrBogus/recBogus"})
    # THEN Airtable's iterator error comes back
    assert response.status_code == 422
    assert error_of(response)["type"] == "LIST_RECORDS_ITERATOR_NOT_AVAILABLE"


def test_fields_sort_and_formula_are_honoured(emu: Running) -> None:
    # GIVEN three donations
    emu.table().batch_create(
        [
            {"Id": "a", "Donation Amount": 30, "Donor Id": "u1"},
            {"Id": "b", "Donation Amount": 10, "Donor Id": "u2"},
            {"Id": "c", "Donation Amount": 20, "Donor Id": "u1"},
        ]
    )
    table = emu.table()
    # WHEN they are read sorted by amount, restricted to two fields
    rows = table.all(sort=["-Donation Amount"], fields=["Id", "Donation Amount"])
    # THEN order and fields follow the options
    assert [r["fields"] for r in rows] == [
        {"Id": "a", "Donation Amount": 30},
        {"Id": "c", "Donation Amount": 20},
        {"Id": "b", "Donation Amount": 10},
    ]
    # WHEN a pyairtable match() formula filters them
    found = table.all(formula=match({"Donor Id": "u1", "Donation Amount": 20}))
    # THEN only the matching record comes back
    assert [r["fields"]["Id"] for r in found] == ["c"]
    assert table.first(formula=match({"Id": "zzz"})) is None


def test_long_formula_goes_through_post_list_records(emu: Running) -> None:
    # GIVEN 20 records and a formula so long that pyairtable switches to POST listRecords
    fill(emu, 20)
    wanted = [f"{n:04d}" for n in range(0, 20, 2)]
    formula = OR(*[Field("Id").eq(v) for v in wanted], *[Field("Id").eq("x" * 40)] * 400)
    table = emu.table()
    seen: list[str] = []
    table.api.session.hooks["response"].append(
        lambda response, **_: seen.append(f"{response.request.method} {response.url}")
    )
    # WHEN the filtered records are read
    rows = table.all(formula=formula, page_size=3)
    # THEN pyairtable used POST .../listRecords, which pages and filters like GET
    assert seen and all(s.startswith("POST ") and s.endswith("/listRecords") for s in seen)
    assert len(seen) == 4
    assert [r["fields"]["Id"] for r in rows] == wanted


def test_unsupported_formula_is_refused_not_ignored(emu: Running) -> None:
    # GIVEN a formula outside the emulator's subset
    # WHEN a listing uses it
    with pytest.raises(requests.HTTPError) as caught:
        emu.table().all(formula="FIND('a', {Id})")
    # THEN it fails loudly instead of returning unfiltered records
    assert error_of(caught.value.response)["type"] == "INVALID_FILTER_BY_FORMULA"


def test_meta_endpoint_returns_the_schema(emu: Running) -> None:
    # GIVEN the Donations base
    # WHEN its schema is read raw and through pyairtable
    raw = emu.http().get(f"{emu.url}/v0/meta/bases/{BASE}/tables").json()
    schema = emu.api().base(BASE).schema()
    # THEN the raw payload is the configured schema and pyairtable can parse it
    assert raw == donations_schema()
    table = schema.table(TABLE)
    assert table.id == "tblDonations00001"
    assert table.primary_field_id == table.field("Id").id
    assert table.field("Donation Amount").type == "currency"
    assert table.field("Creation Date").options.time_zone == "utc"


def test_table_id_works_wherever_a_name_does(emu: Running) -> None:
    # GIVEN a record written through the table name
    emu.table().create({"Id": "a"})
    # WHEN it is read through the table id (and via emu.records by id)
    rows = emu.table("tblDonations00001").all()
    # THEN it is the same table
    assert [r["fields"] for r in rows] == [{"Id": "a"}]
    assert emu.emu.records(BASE, "tblDonations00001") == emu.emu.records(BASE, TABLE)
