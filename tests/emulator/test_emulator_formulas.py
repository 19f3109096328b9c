"""filterByFormula as pyairtable.formulas writes it, and the 16,000-character URL limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from emulator_testkit import Running, error_of
from pyairtable import formulas as F
from pyairtable.api.table import Table

BASE = "appFormulaBase001"
ROWS: list[dict[str, Any]] = [
    {"Full Name": "Ann", "a{b}c": "x", "Amount": 25, "Tags": ["red"], "Done": True},
    {"Full Name": "it's", "a{b}c": "y", "Amount": -2.5, "Tags": ["red", "blue"]},
    {"Full Name": 'back\\slash "q"', "Amount": 1e20, "back\\slash": "b"},
    {"Full Name": "Dan"},
]


@pytest.fixture
def table(start: Callable[..., Running]) -> Table:
    running = start()
    choices = {"choices": [{"name": "red"}, {"name": "blue"}]}
    running.emu.define_base(
        BASE,
        {
            "tables": [
                {
                    "name": "Rows",
                    "fields": [
                        {"name": "Full Name", "type": "singleLineText"},
                        {"name": "a{b}c", "type": "singleLineText"},
                        {"name": "Amount", "type": "number", "options": {"precision": 1}},
                        {"name": "Tags", "type": "multipleSelects", "options": choices},
                        {"name": "Done", "type": "checkbox"},
                        {"name": "back\\slash", "type": "singleLineText"},
                    ],
                }
            ]
        },
    )
    rows = running.table("Rows", base=BASE)
    rows.batch_create(ROWS)
    return rows


def names(table: Table, formula: Any) -> list[str]:
    return [r["fields"]["Full Name"] for r in table.all(formula=formula)]


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        (F.EQ(F.Field("Full Name"), "Ann"), ["Ann"]),
        (F.EQ(F.Field("Full Name"), "it's"), ["it's"]),
        (F.EQ(F.Field("Full Name"), 'back\\slash "q"'), ['back\\slash "q"']),
        (F.EQ(F.Field("a{b}c"), "y"), ["it's"]),
        (F.EQ(F.Field("back\\slash"), "b"), ['back\\slash "q"']),
        (F.EQ(F.Field("Amount"), -2.5), ["it's"]),
        (F.EQ(F.Field("Amount"), 1e20), ['back\\slash "q"']),
        (F.GT(F.Field("Amount"), 0), ["Ann", 'back\\slash "q"']),
        (F.LTE(F.Field("Amount"), 25), ["Ann", "it's", "Dan"]),
        (F.NE(F.Field("Full Name"), "Ann"), ["it's", 'back\\slash "q"', "Dan"]),
        (F.OR(*[F.EQ(F.Field("Full Name"), n) for n in ("Dan", "Ann", "nobody")]), ["Ann", "Dan"]),
        (
            F.AND(F.Field("Amount").gt(0), F.NOT(F.Field("Full Name").eq("Ann"))),
            ['back\\slash "q"'],
        ),
        (F.EQ(F.Field("Done"), True), ["Ann"]),
        (F.EQ(F.Field("Done"), False), ["it's", 'back\\slash "q"', "Dan"]),
        (F.match({"Full Name": "Ann", "Amount": 25}), ["Ann"]),
        (F.EQ(F.Field("Tags"), "red"), ["Ann"]),
        (F.EQ(F.Field("Tags"), "red, blue"), ["it's"]),
        ("{Amount}=BLANK()", ["Dan"]),
        ('AND(TRUE(), NOT(FALSE()), {Full Name}="Dan")', ["Dan"]),
    ],
)
def test_pyairtable_formulas_filter_as_airtable_would(
    table: Table, formula: Any, expected: list[str]
) -> None:
    # GIVEN four rows, WHEN they are filtered with a formula, THEN the expected rows match
    assert names(table, formula) == expected


def test_record_id_matches_the_record(table: Table) -> None:
    # GIVEN the rows' ids
    ids = [r["id"] for r in table.all()]
    # WHEN they are filtered by RECORD_ID() in a many-argument OR
    formula = F.OR(*[F.EQ(F.RECORD_ID(), record_id) for record_id in ids[1:3]])
    # THEN exactly those records come back
    assert [r["id"] for r in table.all(formula=formula)] == ids[1:3]


@pytest.mark.parametrize(
    "formula",
    [
        F.EQ(F.Field("Amount"), F.DATETIME_PARSE("2020-01-01")),
        "{Amount}-1>0",
        "{Full Name}&'x'='Annx'",
        "SEARCH('a', {Full Name})",
        "{Nope}=1",
        "{Amount}=-'x'",
    ],
)
def test_formulas_outside_the_subset_are_refused(table: Table, formula: Any) -> None:
    # GIVEN a formula the emulator does not evaluate
    # WHEN it filters a listing, THEN it is a 422 rather than an ignored filter
    with pytest.raises(requests.HTTPError) as caught:
        table.all(formula=formula)
    assert error_of(caught.value.response)["type"] == "INVALID_FILTER_BY_FORMULA"


def test_a_long_formula_goes_through_list_records_with_field_ids(table: Table) -> None:
    # GIVEN an OR long enough that its GET URL would pass 16,000 characters
    formula = F.OR(F.EQ(F.Field("a{b}c"), "x"), *[F.EQ(F.Field("Full Name"), "z" * 50)] * 300)
    seen: list[str] = []
    table.api.session.hooks["response"].append(lambda r, **_: seen.append(r.request.method))
    # WHEN pyairtable lists with it, keyed by field id
    rows = table.all(formula=formula, use_field_ids=True)
    # THEN it was a POST listRecords, filtered the same way, and keyed by ids
    assert seen == ["POST"]
    full_name = table.schema().field("Full Name").id
    assert [r["fields"][full_name] for r in rows] == ["Ann"]


def test_a_url_over_16000_characters_is_refused(emu: Running) -> None:
    # GIVEN a request target (path and query) of exactly 16,000 characters, and one longer
    session = emu.http()
    path = emu.records_url()[len(emu.url) :] + "?pad="
    at_limit = emu.url + path + "a" * (16_000 - len(path))
    # WHEN both are sent as GETs
    accepted, refused = session.get(at_limit), session.get(at_limit + "a")
    # THEN the first is served, the second gets a 414 with an HTML page
    assert accepted.status_code == 200
    assert refused.status_code == 414
    assert refused.headers["Content-Type"] == "text/html"
    assert "414 Request-URI Too Large" in refused.text
    # AND the refused one never reached the base
    assert emu.emu.stats.base("appDonations00001").data_requests == 1
