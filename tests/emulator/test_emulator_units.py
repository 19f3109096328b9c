"""Unit checks of the validators and the formula subset, without HTTP (fast and exhaustive)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from airtable_emulator import EmulatorConfig, Faults, donations_schema
from airtable_emulator.errors import ApiError
from airtable_emulator.fields import CellError, normalize_cell
from airtable_emulator.formula import compile_formula
from airtable_emulator.schema import SchemaError, validate_schema


def cell(field_type: str, value: Any, typecast: bool = False, **options: Any) -> Any:
    field = {"id": "fldX", "name": "X", "type": field_type, "options": options}
    return normalize_cell(field, value, typecast=typecast, new_choice=lambda *_: None)


@pytest.mark.parametrize(
    ("field_type", "value", "typecast", "expected"),
    [
        ("singleLineText", "abc", False, "abc"),
        ("email", "a@example.org", False, "a@example.org"),
        ("singleLineText", 25.0, True, "25"),
        ("singleLineText", 2.5, True, "2.5"),
        ("currency", 7, False, 7),
        ("currency", "$1,250.50", True, 1250.5),
        ("percent", "12%", True, 12),
        ("number", "3", True, 3),
        ("checkbox", "Yes", True, True),
        ("checkbox", 0, True, False),
        ("date", "2024-01-31", False, "2024-01-31"),
        ("date", "2024-01-31T23:00:00Z", True, "2024-01-31"),
        ("dateTime", "2018-05-01T12:00Z", False, "2018-05-01T12:00:00.000Z"),
        ("dateTime", "2018-05-01T12:00:00+0530", False, "2018-05-01T06:30:00.000Z"),
        ("multipleSelects", ["a", "a"], False, ["a"]),
        ("rating", 5.0, False, 5),
        ("multipleRecordLinks", ["recAAAAAAAAAAAAAA"], False, ["recAAAAAAAAAAAAAA"]),
        ("singleLineText", None, False, None),
    ],
)
def test_accepted_values(field_type: str, value: Any, typecast: bool, expected: Any) -> None:
    # GIVEN a field of a type, WHEN a valid value is normalised, THEN Airtable's form results
    options = {"choices": [{"id": "selA", "name": "a"}], "symbol": "$", "max": 5}
    assert cell(field_type, value, typecast, **options) == expected


@pytest.mark.parametrize(
    ("field_type", "value", "typecast"),
    [
        ("singleLineText", True, False),
        ("singleLineText", ["a"], True),
        ("number", True, True),
        ("number", "1e999", True),
        ("number", "NaN", True),
        ("checkbox", "maybe", True),
        ("checkbox", 1, False),
        ("date", "2024-1-5", False),
        ("date", "2024-01-31T23:00:00Z", False),
        ("dateTime", "2018-05-01 12:00:00Z", False),
        ("dateTime", "2018-05-01T25:00:00Z", False),
        ("dateTime", "20180501T120000Z", False),
        ("singleSelect", 1, True),
        ("multipleSelects", "a", False),
        ("rating", 0, False),
        ("rating", 2.5, False),
    ],
)
def test_refused_values(field_type: str, value: Any, typecast: bool) -> None:
    # GIVEN a value Airtable would refuse, WHEN it is normalised, THEN CellError is raised
    with pytest.raises(CellError) as caught:
        cell(field_type, value, typecast, choices=[{"id": "selA", "name": "a"}], max=5)
    assert caught.value.error_type == "INVALID_VALUE_FOR_COLUMN"


def test_typecast_reports_new_select_options_instead_of_adding_them() -> None:
    # GIVEN a select field and a recorder for new options
    field = {"id": "fldS", "name": "S", "type": "singleSelect", "options": {"choices": []}}
    added: list[str] = []
    # WHEN a new option is typecast
    value = normalize_cell(field, "New", typecast=True, new_choice=lambda _f, n: added.append(n))
    # THEN it is reported, and the schema is left for the caller to change
    assert (value, added, field["options"]["choices"]) == ("New", ["New"], [])


@pytest.mark.parametrize(
    ("formula", "fields", "expected"),
    [
        ("{Id}='a'", {"Id": "a"}, True),
        ("{Id}='a'", {"Id": "b"}, False),
        (r"{Id}='it\'s'", {"Id": "it's"}, True),
        ('{Id}="x"', {"Id": "x"}, True),
        ("AND({Id}='a', {Amount}=25)", {"Id": "a", "Amount": 25.0}, True),
        ("OR({Id}='z', {Amount}>=30)", {"Id": "a", "Amount": 25}, False),
        ("NOT({Id}='a')", {"Id": "b"}, True),
        ("{Id}=''", {}, True),
        ("{Id}=BLANK()", {}, True),
        ("{Flag}=TRUE()", {"Flag": True}, True),
        ("{Amount}!=0", {"Amount": 3}, True),
        ("({Amount}<5)", {"Amount": 3}, True),
    ],
)
def test_formula_subset(formula: str, fields: dict[str, Any], expected: bool) -> None:
    # GIVEN a supported formula, WHEN it is evaluated, THEN it matches Airtable's meaning
    predicate = compile_formula(formula, {"Id", "Amount", "Flag"})
    assert bool(predicate(fields)) is expected


def test_a_lookup_by_keys_means_what_each_of_its_comparisons_means() -> None:
    # GIVEN seeded lookups by key, OR(AND({A}='a', {B}='b'), ...), and cells of every kind
    rng = random.Random(20261203)
    cells = [None, "", "a", "1", "1.5", 1, 1.0, 1.5, 0, True, False, ["a"], ["a", "b"], [], "a, b"]
    texts = ["", "a", "1", "1.5", "0", "a, b", "b"]
    for _ in range(3000):
        terms = [(rng.choice(texts), rng.choice(texts)) for _ in range(rng.randint(1, 4))]
        formula = "OR(" + ",".join(f"AND({{A}}='{a}',{{B}}='{b}')" for a, b in terms) + ")"
        row = {"A": rng.choice(cells), "B": rng.choice(cells)}
        # WHEN it is evaluated
        matched = bool(compile_formula(formula, {"A", "B"})(row))
        # THEN it matches exactly when one term's comparisons both hold, each on its own
        each = [
            compile_formula(f"{{A}}='{a}'", {"A"})(row)
            and compile_formula(f"{{B}}='{b}'", {"B"})(row)
            for a, b in terms
        ]
        assert matched is any(each), (formula, row)


@pytest.mark.parametrize(
    "formula", ["FIND('a', {Id})", "{Nope}='a'", "{Id}='a", "{Id}='a' {Id}", "AND(", "{Id}&'x'"]
)
def test_formula_outside_the_subset_is_refused(formula: str) -> None:
    # GIVEN an unsupported or broken formula, WHEN it is compiled, THEN a 422 is raised
    with pytest.raises(ApiError) as caught:
        compile_formula(formula, {"Id"})
    assert caught.value.error_type == "INVALID_FILTER_BY_FORMULA"


def test_donations_schema_is_a_fresh_valid_copy() -> None:
    # GIVEN the Donations schema, WHEN it is fetched twice and one copy is changed
    first, second = donations_schema(), donations_schema()
    first["tables"][0]["name"] = "changed"
    # THEN the other copy is untouched, valid and has the six documented fields
    validate_schema("appDonations00001", second)
    table = second["tables"][0]
    assert (table["id"], table["name"]) == ("tblDonations00001", "Donations")
    assert [(f["name"], f["type"]) for f in table["fields"]] == [
        ("Id", "singleLineText"),
        ("Creation Date", "dateTime"),
        ("Donor Id", "singleLineText"),
        ("Fundraiser Id", "singleLineText"),
        ("Donation Amount", "currency"),
        ("Donor Display Name", "singleLineText"),
    ]
    assert table["primaryFieldId"] == table["fields"][0]["id"]


@pytest.mark.parametrize(
    "schema",
    [
        {},
        {"tables": [{"id": "tbl1", "name": "T", "fields": [], "primaryFieldId": "fldX"}]},
        {
            "tables": [
                {
                    "id": "tbl1",
                    "name": "T",
                    "primaryFieldId": "fld1",
                    "fields": [
                        {"id": "fld1", "name": "A", "type": "number"},
                        {"id": "fld2", "name": "A", "type": "number"},
                    ],
                }
            ]
        },
    ],
)
def test_malformed_schemas_are_refused(schema: dict[str, Any]) -> None:
    # GIVEN a schema not shaped like Airtable's, WHEN it is validated, THEN it is refused
    with pytest.raises(SchemaError):
        validate_schema("appX", schema)


@pytest.mark.parametrize(
    "config",
    [
        {"latency": (0.3, 0.1)},
        {"rate_limit_rps": 0},
        {"rate_limit_rps": 2.5},
        {"lockout_seconds": -1},
        {"max_body_bytes": 0},
        {"faults": {"error_5xx_rate": 0.1}},
    ],
)
def test_invalid_configs_are_refused(config: dict[str, Any]) -> None:
    # GIVEN an invalid setting, WHEN a config is built, THEN it is refused up front
    with pytest.raises((ValueError, TypeError)):
        EmulatorConfig(**config)


@pytest.mark.parametrize(("error_5xx", "lost"), [(0.6, 0.6), (-0.1, 0.0), (0.0, 1.5)])
def test_invalid_fault_rates_are_refused(error_5xx: float, lost: float) -> None:
    # GIVEN rates outside 0..1 (or summing above 1), WHEN Faults is built, THEN it is refused
    with pytest.raises(ValueError):
        Faults(error_5xx_rate=error_5xx, lost_response_rate=lost)
