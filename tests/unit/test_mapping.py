"""Mapping a message body to Airtable fields."""

from __future__ import annotations

import pytest
from devstack.factories import DONATION_FIELD_MAP_JSON, donation

from poller.errors import MappingError
from poller.mapping import FieldMap, Mapper
from poller.model import Message


def message(body: str) -> Message:
    return Message(id="m1", receipt="r1", body=body)


MAPPER = Mapper(FieldMap.parse(DONATION_FIELD_MAP_JSON), ("Id",))


def test_maps_keys_to_fields_and_ignores_unknown_keys():
    import json

    body = donation(1, Currency="USD")
    record = MAPPER(message(json.dumps(body)))
    assert record.fields["Donation Amount"] == body["DonationAmount"]
    assert record.fields["Donor Id"] == body["UserId"]
    assert "Currency" not in record.fields and len(record.fields) == 6
    assert record.key == (f'"{body["Id"]}"',)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "body is empty"),
        ("   ", "body is empty"),
        ("{", "body is not valid JSON"),
        ("42", "body is JSON int, expected an object"),
        ('"text"', "body is JSON str, expected an object"),
        ('{"Id": ""}', 'merge key field "Id" (MERGE_ON) is missing or empty'),
        ('{"Id": null}', 'merge key field "Id" (MERGE_ON) is missing or empty'),
        ('{"Id": "1", "DonationAmount": Infinity}', "Infinity is not a valid JSON number"),
    ],
)
def test_poison_gets_a_reason(body, reason):
    with pytest.raises(MappingError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        MAPPER(message(body))
