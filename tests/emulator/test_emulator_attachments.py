"""Attachment fields (multipleAttachments): URL objects in, ``att…`` objects out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from emulator_testkit import Running, error_of
from pyairtable.api.table import Table


@pytest.fixture
def files(start: Callable[..., Running]) -> Table:
    """Donations with a Receipt attachment field created through the meta API."""
    running = start()
    table = running.table()
    table.create_field("Receipt", "multipleAttachments")
    return table


def test_the_meta_api_creates_an_attachment_field(start: Callable[..., Running]) -> None:
    # GIVEN the Donations table
    table = start().table()
    # WHEN attachment fields are created without options and with isReversed
    plain = table.create_field("Plain", "multipleAttachments")
    reversed_ = table.create_field("Reversed", "multipleAttachments", options={"isReversed": True})
    # THEN they carry isReversed, and other options are refused
    assert (plain.options.is_reversed, reversed_.options.is_reversed) == (False, True)
    with pytest.raises(requests.HTTPError) as caught:
        table.create_field("Bad", "multipleAttachments", options={"maxFiles": 3})
    assert error_of(caught.value.response)["type"] == "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE"


def test_url_objects_are_stored_with_ids_and_filenames(files: Table) -> None:
    # WHEN a record gets two attachments, one without a filename
    record = files.create(
        {
            "Id": "a",
            "Receipt": [
                {"url": "https://files.example.org/r/receipt%201.pdf?sig=x"},
                {"url": "https://files.example.org/scan", "filename": "scan.png"},
            ],
        }
    )
    # THEN each reads back as {id, url, filename}, the filename defaulting to the URL's last
    # path segment
    receipts = record["fields"]["Receipt"]
    assert [a["filename"] for a in receipts] == ["receipt 1.pdf", "scan.png"]
    assert [a["url"] for a in receipts] == [
        "https://files.example.org/r/receipt%201.pdf?sig=x",
        "https://files.example.org/scan",
    ]
    assert all(a["id"].startswith("att") and len(a["id"]) == 17 for a in receipts)
    assert files.get(record["id"])["fields"]["Receipt"] == receipts


def test_a_write_replaces_the_list_unless_it_resends_the_ids(files: Table) -> None:
    # GIVEN a record with one attachment
    record = files.create({"Id": "a", "Receipt": [{"url": "https://x.example/one.pdf"}]})
    kept = record["fields"]["Receipt"][0]
    # WHEN it is updated with a new attachment only
    replaced = files.update(record["id"], {"Receipt": [{"url": "https://x.example/two.pdf"}]})
    # THEN the old one is gone
    assert [a["filename"] for a in replaced["fields"]["Receipt"]] == ["two.pdf"]
    # WHEN the old one's id (as read back) is sent with another new one
    both = files.update(record["id"], {"Receipt": [kept, {"url": "https://x.example/three.pdf"}]})
    # THEN the old one is back as it was, next to the new one
    assert both["fields"]["Receipt"][0] == kept
    assert [a["filename"] for a in both["fields"]["Receipt"]] == ["one.pdf", "three.pdf"]


@pytest.mark.parametrize(
    "value",
    [
        "https://x.example/a.pdf",
        [{"filename": "a.pdf"}],
        [{"url": "ftp://x.example/a.pdf"}],
        [{"url": "https://x.example/a.pdf", "size": 3}],
        [{"id": "attDoesNotExist01"}],
        ["https://x.example/a.pdf"],
    ],
)
def test_anything_else_is_refused(files: Table, value: Any) -> None:
    # GIVEN a value that is not a list of attachment objects (or names an unknown id)
    # WHEN it is written, THEN the whole request is INVALID_VALUE_FOR_COLUMN
    with pytest.raises(requests.HTTPError) as caught:
        files.batch_create([{"Id": "ok"}, {"Id": "bad", "Receipt": value}])
    assert error_of(caught.value.response) == {
        "type": "INVALID_VALUE_FOR_COLUMN",
        "message": 'Field "Receipt" cannot accept the provided value',
    }
    assert files.all() == []


def test_an_attachment_id_may_be_copied_to_another_record(files: Table) -> None:
    # GIVEN an attachment on one record
    first = files.create({"Id": "a", "Receipt": [{"url": "https://x.example/one.pdf"}]})
    attachment = first["fields"]["Receipt"][0]
    # WHEN another record is given its id
    second = files.create({"Id": "b", "Receipt": [{"id": attachment["id"]}]})
    # THEN it holds the same attachment
    assert second["fields"]["Receipt"] == [attachment]
    assert [
        r["fields"]["Id"]
        for r in files.all(formula="{Receipt}='one.pdf (https://x.example/one.pdf)'")
    ] == ["a", "b"]
