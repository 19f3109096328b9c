"""Routes: one poller, many event types and tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from poller.convert import key_text
from poller.errors import ConfigError, MappingError
from poller.fieldmap import FieldMap
from poller.model import DEFAULT_ROUTE, Action, Attribute, Message, Record
from poller.routes import parse_routes
from poller.routing import Route, Router, single_route

DATA = Path(__file__).parent / "data"
SNS_DONATION, EB_DONATION, EB_FUNDRAISER, LOOKALIKE, SNS_NOT_JSON = (
    (DATA / "envelopes.jsonl").read_text(encoding="utf-8").splitlines()
)
DOTNET = (DATA / "dotnet-producer.jsonl").read_text(encoding="utf-8").splitlines()

#: The routes contract's example, verbatim.
CONTRACT = json.loads((DATA / "routes-contract.json").read_text(encoding="utf-8"))


def msg(body: object, **extra: object) -> Message:
    text = body if isinstance(body, str) else json.dumps(body)
    return Message(id="m1", receipt="r1", body=text, **extra)


def router(config: dict = CONTRACT, envelope: str = "auto") -> Router:
    return Router(parse_routes(json.dumps(config)), envelope)


def routes_with(*whens: dict | None, envelope: str | None = None) -> dict:
    """Routes "r0", "r1", ... each mapping "Id" with one `when` (None: no "when")."""
    routes = []
    for n, when in enumerate(whens):
        route = {"name": f"r{n}", "base": "appAAAAAAAAAAAAAA", "table": "T", "fields": {"Id": "Id"}}
        if when is not None:
            route["when"] = when
        if envelope:
            route["envelope"] = envelope
        routes.append(route)
    return {"routes": routes}


def route_of(config: dict, body: object, **extra: object) -> str:
    return router(config)(msg(body, **extra)).route


def no_match_reason(config: dict, body: object, envelope: str = "auto") -> str:
    with pytest.raises(MappingError) as raised:
        router(config, envelope)(msg(body))
    return raised.value.reason


# -- the samples through the contract's routes ----------------------------------------------


def test_every_sample_goes_to_its_table_with_the_payload_values():
    r = router()
    # GIVEN the field samples WHEN routed THEN donations go to Donations whatever the envelope
    assert r(msg(SNS_DONATION)) == Record(
        {"Id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "Donation Amount": 25.0},
        (key_text("7c9e6679-7425-40de-944b-e07fc1f90ae7"),),
        "donations",
    )
    assert r(msg(EB_DONATION)).fields == {
        "Id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",  # the payload's Id, not the event's id
        "Donation Amount": 20.5,
    }
    assert r(msg(LOOKALIKE)).route == "donations"  # raw, not unwrapped: it has DonationAmount
    for line in DOTNET:
        record = r(msg(line))
        assert record.route == "donations" and record.fields["Id"] == json.loads(line)["Id"]
    # AND the FundraiserCreated event goes to Fundraisers
    assert r(msg(EB_FUNDRAISER)) == Record(
        {"Fundraiser Id": "0f8fad5b-d9cb-469f-a165-70867728950e", "Name": "Spring walk"},
        (key_text("0f8fad5b-d9cb-469f-a165-70867728950e"),),
        "fundraisers",
    )


def test_an_sns_message_that_is_not_json_is_poison_with_routes():
    with pytest.raises(MappingError, match=r"^SNS Message is not valid JSON"):
        router()(msg(SNS_NOT_JSON))


def test_a_message_no_route_matches_names_its_top_level_keys_never_values():
    reason = no_match_reason(CONTRACT, {"FundraiserId": "secret-value", "Name": "x"})
    assert reason == 'no route matched (top-level keys: ["FundraiserId", "Name"])'
    reason = no_match_reason(CONTRACT, json.loads(EB_FUNDRAISER) | {"detail-type": "Other"})
    assert reason == (
        'no route matched (top-level keys of the EventBridge payload: ["FundraiserId", '
        '"Name", "Goal"])'
    )


# -- matching -------------------------------------------------------------------------------


def test_the_first_matching_route_wins():
    config = routes_with({"Kind": "a"}, {"Amount": {"exists": True}}, None)
    assert route_of(config, {"Id": "1", "Kind": "a", "Amount": 1}) == "r0"
    assert route_of(config, {"Id": "1", "Kind": "b", "Amount": 1}) == "r1"
    assert route_of(config, {"Id": "1", "Kind": "b"}) == "r2"


def test_every_condition_must_hold():
    config = routes_with({"Kind": "a", "Amount": {"exists": True}}, None)
    assert route_of(config, {"Id": "1", "Kind": "a", "Amount": 1}) == "r0"
    assert route_of(config, {"Id": "1", "Kind": "a"}) == "r1"
    assert route_of(config, {"Id": "1", "Amount": 1}) == "r1"


@pytest.mark.parametrize(
    ("body", "exists_true", "exists_false"),
    [
        ({"Id": "1", "X": 0}, True, False),
        ({"Id": "1", "X": ""}, True, False),
        ({"Id": "1", "X": False}, True, False),
        ({"Id": "1", "X": None}, False, True),  # null counts as absent
        ({"Id": "1"}, False, True),
    ],
)
def test_exists(body, exists_true, exists_false):
    present = routes_with({"X": {"exists": True}}, None)
    absent = routes_with({"X": {"exists": False}}, None)
    assert (route_of(present, body) == "r0") is exists_true
    assert (route_of(absent, body) == "r0") is exists_false


@pytest.mark.parametrize(
    ("literal", "value", "matches"),
    [
        (1, 1.0, True),
        (1.0, 1, True),
        (True, 1, False),
        (1, True, False),
        ("1", 1, False),
        (None, None, True),
        ({"a": [1, True]}, {"a": [1.0, True]}, True),
        ({"a": [1, True]}, {"a": [1, 1]}, False),
    ],
)
def test_literals_compare_as_json(literal, value, matches):
    by_in = routes_with({"X": {"in": [literal]}}, None)
    assert (route_of(by_in, {"Id": "1", "X": value}) == "r0") is matches
    if not isinstance(literal, dict):  # an object in "when" is an operator; use "in" for those
        by_equal = routes_with({"X": literal}, None)
        assert (route_of(by_equal, {"Id": "1", "X": value}) == "r0") is matches


def test_a_literal_null_does_not_match_a_missing_source():
    config = routes_with({"X": None}, None)
    assert route_of(config, {"Id": "1", "X": None}) == "r0"
    assert route_of(config, {"Id": "1"}) == "r1"


def test_in():
    config = routes_with({"Kind": {"in": ["a", "b"]}}, None)
    assert [route_of(config, {"Id": "1", "Kind": k}) for k in ("a", "b", "c")] == ["r0", "r0", "r1"]


def test_conditions_read_nested_paths_and_sqs_values():
    config = routes_with(
        {"event.type": "donation"}, {"$MessageAttributes.kind": "f"}, {"$MessageGroupId": "g"}, None
    )
    assert route_of(config, {"Id": "1", "event": {"type": "donation"}}) == "r0"
    assert route_of(config, {"Id": "1"}, attributes={"kind": Attribute("String", "f")}) == "r1"
    assert route_of(config, {"Id": "1"}, group_id="g") == "r2"
    assert route_of(config, {"Id": "1"}) == "r3"


def test_a_condition_on_a_number_attribute_compares_numbers():
    # GIVEN a route for priority 1, as a JSON number
    config = routes_with({"$MessageAttributes.priority": {"in": [1, 2]}}, None)
    # WHEN the attribute is a Number THEN it matches as a number (1.0 and "Number.int" too)
    for attribute in (
        Attribute("Number", "1"),
        Attribute("Number", "1.0"),
        Attribute("Number.int", "2"),
    ):
        assert route_of(config, {"Id": "1"}, attributes={"priority": attribute}) == "r0"
    # AND a String attribute "1" is text, which a number never equals
    assert route_of(config, {"Id": "1"}, attributes={"priority": Attribute("String", "1")}) == "r1"


def test_envelope_keys_in_conditions():
    sns = json.loads(SNS_DONATION)
    sns["MessageAttributes"] = {"channel": {"Type": "String", "Value": "web"}}
    config = routes_with(
        {"$Envelope.MessageAttributes.channel": "web"},
        {"$Envelope.TopicArn": {"exists": True}},
        {"$Envelope.source": "fundraise.app"},
        None,
    )
    assert route_of(config, sns) == "r0"
    del sns["MessageAttributes"]
    assert route_of(config, sns) == "r1"
    assert route_of(config, EB_DONATION) == "r2"
    assert route_of(config, DOTNET[0]) == "r3"  # a raw body has no $Envelope values


def test_a_lookalike_is_matched_as_raw():
    # GIVEN a raw body with "id" and "detail", and a route for EventBridge events
    config = routes_with({"$Envelope.id": {"exists": True}}, {"detail.note": {"exists": True}})
    # WHEN routed THEN it was not unwrapped: its own "detail" is readable, no $Envelope
    assert route_of(config, LOOKALIKE) == "r1"


def test_each_route_reads_the_message_through_its_own_envelope_mode():
    # GIVEN a raw-mode route that matches SNS notifications themselves, before an auto one
    config = {
        "routes": [
            {
                "name": "audit",
                "envelope": "raw",
                "when": {"TopicArn": {"exists": True}, "Subject": "audit"},
                "base": "appAAAAAAAAAAAAAA",
                "table": "Audit",
                "fields": {"MessageId": "Message Id", "Subject": "Subject"},
            },
            {
                "name": "eb-only",
                "envelope": "eventbridge",
                "base": "appAAAAAAAAAAAAAA",
                "table": "Events",
                "fields": {"Id": "Id", "$Envelope.detail-type": "Type"},
            },
            {
                "name": "rest",
                "base": "appAAAAAAAAAAAAAA",
                "table": "Rest",
                "fields": {"Id": "Id"},
            },
        ]
    }
    sns = json.loads(SNS_DONATION)
    # WHEN an SNS notification with Subject "audit" is routed THEN the raw route maps the envelope
    assert router(config)(msg({**sns, "Subject": "audit"})).fields == {
        "Message Id": sns["MessageId"],
        "Subject": "audit",
    }
    # AND an EventBridge event goes to the eventbridge route, unwrapped
    assert router(config)(msg(EB_DONATION)).fields == {
        "Id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        "Type": "DonationCreated",
    }
    # AND an SNS donation skips both (not audit, not EventBridge) and is unwrapped for "rest"
    assert router(config)(msg(sns)).route == "rest"


def test_a_no_match_reason_says_which_routes_took_another_envelope():
    config = routes_with({"Id": {"exists": True}}, {"Kind": "x"}, envelope="sns")
    assert no_match_reason(config, DOTNET[0]) == (
        'no route matched (top-level keys: ["UserId", "FundraiserId", "DonationAmount", '
        '"DonorDisplayName", "Id", "CreationDate"]); route "r0" skipped: body is not an SNS '
        'notification; route "r1" skipped: body is not an SNS notification'
    )


def test_the_matched_route_maps_and_its_problems_are_poison_not_a_fall_through():
    config = {
        "routes": [
            {
                "name": "typed",
                "when": {"Kind": "a"},
                "base": "appAAAAAAAAAAAAAA",
                "table": "T",
                "fields": {"Id": "Id", "Amount": {"field": "Amount", "type": "currency"}},
                "merge_on": ["Id"],
            },
            {"name": "rest", "base": "appAAAAAAAAAAAAAA", "table": "T", "fields": {"Id": "Id"}},
        ]
    }
    with pytest.raises(MappingError) as raised:
        router(config)(msg({"Id": "1", "Kind": "a", "Amount": "ten"}))
    assert raised.value.reason.startswith("field \"Amount\": cannot convert str 'ten'")
    with pytest.raises(MappingError) as raised:
        router(config)(msg({"Kind": "a", "Amount": 1}))
    assert (
        raised.value.reason == 'merge key field "Id" (route "typed" merge_on) is missing or empty'
    )
    with pytest.raises(MappingError) as raised:
        router(config)(msg({"Kind": "a"}))
    assert raised.value.reason == 'no route "typed" source found (top-level keys: ["Kind"])'


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"Id": "a", "Id": "b"}', 'body has the key "Id" twice'),
        ('{"Id": NaN}', "body is not valid JSON: NaN is not a valid JSON number"),
        ("[]", "body is JSON list, expected an object"),
    ],
)
def test_the_body_is_parsed_strictly_before_routing(body, reason):
    with pytest.raises(MappingError, match=reason):
        router(routes_with(None))(msg(body))


# -- the single-table configuration as one route -------------------------------------------

SINGLE_MAP = FieldMap.parse(
    '{"Id": "Id", "DonationAmount": {"field": "Donation Amount", "type": "currency"}}'
)


def test_single_route_matches_everything_and_unwraps_every_envelope():
    route = single_route("appDonations00001", "Donations", SINGLE_MAP, ("Id",), "auto")
    r = Router([route])
    records = [r(msg(line)) for line in [SNS_DONATION, EB_DONATION, LOOKALIKE, *DOTNET]]
    assert all(rec.route == DEFAULT_ROUTE for rec in records)
    assert [rec.fields["Donation Amount"] for rec in records] == [
        25.0,
        20.5,
        5.0,
        25.0,
        20.5,
        100.0,
        0.1,
    ]
    # AND the poison keeps the single-table wording
    with pytest.raises(MappingError, match=r"^no FIELD_MAP source found"):
        r(msg(EB_FUNDRAISER))
    with pytest.raises(MappingError, match=r'^merge key field "Id" \(MERGE_ON\)'):
        r(msg({"DonationAmount": 1}))


def test_a_single_route_with_an_explicit_envelope_makes_other_shapes_poison():
    r = Router([single_route("appDonations00001", "Donations", SINGLE_MAP, ("Id",), "sns")])
    assert r(msg(SNS_DONATION)).fields["Id"] == "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    with pytest.raises(MappingError, match=r"^body is not an SNS notification \(ENVELOPE=sns\)"):
        r(msg(DOTNET[0]))


# -- writing by field id --------------------------------------------------------------------

SCHEMA_FIELDS = [
    {"id": "fldId000000000001", "name": "Id", "type": "singleLineText"},
    {"id": "fldAmount00000001", "name": "Donation Amount", "type": "currency"},
    {"id": "fldNotes000000001", "name": "Notes", "type": "multilineText"},
]


def resolved_on(route: Route, fields: list[dict] = SCHEMA_FIELDS) -> Route:
    """The route bound to a table with these fields, each target by its name (as
    `schema.fit` resolves them)."""
    ids = {f["name"]: f["id"] for f in fields if route.field_map.spec(f["name"])}
    return route.resolved(ids, fields)


def test_a_resolved_route_keys_records_and_merge_on_by_field_id():
    # GIVEN the donations route and the table's schema
    route = parse_routes(json.dumps(CONTRACT))[0]
    resolved = resolved_on(route)
    # WHEN a donation is routed
    record = Router([resolved])(msg(DOTNET[0]))
    # THEN its fields and merge fields are ids (a rename in Airtable changes nothing)
    assert resolved.merge_on == ("fldId000000000001",)
    assert record.fields == {
        "fldId000000000001": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "fldAmount00000001": 25.0,
    }
    assert record.key == (key_text("7c9e6679-7425-40de-944b-e07fc1f90ae7"),)
    # AND reasons still use the field names
    with pytest.raises(MappingError) as raised:
        Router([resolved])(msg({"Id": "a", "DonationAmount": "ten"}))
    assert raised.value.reason.startswith('field "Donation Amount": cannot convert')
    with pytest.raises(MappingError) as raised:
        Router([resolved])(msg({"DonationAmount": 1}))
    assert (
        raised.value.reason
        == 'merge key field "Id" (route "donations" merge_on) is missing or empty'
    )


def test_merge_on_may_name_a_field_by_id():
    config = json.loads(json.dumps(CONTRACT))
    config["routes"][0]["merge_on"] = ["fldId000000000001"]
    route = parse_routes(json.dumps(config))[0]
    # WHEN not resolved THEN the Router refuses to start (it could never build the key)
    with pytest.raises(ConfigError, match=r"merges on field id\(s\) \['fldId000000000001'\]"):
        Router([route])
    # WHEN resolved THEN it merges on that field
    resolved = resolved_on(route)
    assert resolved.merge_on == ("fldId000000000001",)
    assert Router([resolved])(msg({"Id": "a", "DonationAmount": 1})).key == (key_text("a"),)


def test_a_single_route_resolved_keys_its_records_by_field_id():
    route = single_route("appDonations00001", "D", SINGLE_MAP, ("Id",))
    resolved = resolved_on(route)
    assert [s.key for s in resolved.field_map.specs] == ["fldId000000000001", "fldAmount00000001"]
    assert resolved.merge_on == ("fldId000000000001",)
    assert Router([resolved])(msg({"Id": "a", "DonationAmount": 2})).fields == {
        "fldId000000000001": "a",
        "fldAmount00000001": 2,
    }


# -- parsing and validation -----------------------------------------------------------------


def test_the_contract_parses_into_hashable_routes():
    routes = parse_routes(json.dumps(CONTRACT))
    assert [r.name for r in routes] == ["donations", "fundraisers"]
    donations = routes[0]
    assert isinstance(donations, Route) and hash(donations) == hash(
        parse_routes(json.dumps(CONTRACT))[0]
    )
    assert (donations.base_id, donations.table, donations.merge_on) == (
        "appXXXXXXXXXXXXXX",
        "Donations",
        ("Id",),
    )
    assert donations.field_map.spec("Donation Amount").type == "currency"
    assert donations.envelope is None and len(donations.when) == 1


def test_every_problem_of_every_route_is_reported_at_once():
    config = {
        "routes": [
            {
                "name": "",
                "base": "appShort",
                "table": "",
                "fields": {"Id": "Id"},
                "merge_on": ["Id", "Id"],
                "envelope": "kafka",
                "colour": "blue",
            },
            {
                "name": "b",
                "base": "appBBBBBBBBBBBBBB",
                "table": "T",
                "fields": {"Id": {"field": "Id", "type": "money"}},
                "when": {"X": {"exists": "yes"}, "Y": {"in": []}, "Z": {"gt": 1}, "$Body": 1},
                "merge_on": ["Nope", "A", "B", "C"],
            },
            {"name": "b", "base": "appBBBBBBBBBBBBBB", "table": "T", "merge_on": ["Missing"]},
            "not a route",
        ]
    }
    with pytest.raises(ConfigError) as raised:
        parse_routes(json.dumps(config))
    assert raised.value.variable == "ROUTES"
    problems = raised.value.problem.split("; ")
    expected = [
        'route #1 needs a "name" (a non-empty string)',
        "route #1 has unknown key(s) ['colour']",
        "route #1 \"base\" must look like app + 14 letters/digits, got 'appShort'",
        'route #1 needs a "table"',
        "route #1 \"envelope\" must be one of ['auto', 'raw', 'sns', 'eventbridge'], got 'kafka'",
        'route #1 "merge_on" must name 1 to 3 distinct fields',
        'route "b" "fields" entry "Id" has type \'money\'',
        'route "b" "merge_on" must name 1 to 3 distinct fields',
        'route "b" "when" has \'X\': "exists" takes true or false, got "yes"',
        'route "b" "when" has \'Y\': "in" takes a non-empty list, got []',
        'route "b" "when" has \'Z\': {"gt": 1}, but a condition is a literal',
        'route "b" "when" source "$Body" is not an SQS or envelope value',
        'route "b" needs "fields"',
        "route #4 must be an object, got str",
        "route names must be unique (repeated: ['b'])",
    ]
    for text in expected:
        assert any(p.startswith(text) for p in problems), (text, problems)


def test_merge_on_must_be_filled_by_the_routes_fields():
    # GIVEN a route whose merge_on names a field its "fields" never fill
    config = routes_with(None)
    config["routes"][0]["merge_on"] = ["Other"]
    # WHEN parsed THEN ROUTES is named, with the route and the unfilled field
    with pytest.raises(ConfigError) as raised:
        parse_routes(json.dumps(config))
    assert raised.value.variable == "ROUTES"
    assert 'route "r0" "merge_on" names [\'Other\']' in raised.value.problem


def test_a_route_after_a_catch_all_is_reported():
    with pytest.raises(
        ConfigError, match='route "r1" can never match: route "r0" before it has no "when"'
    ):
        parse_routes(json.dumps(routes_with(None, {"X": 1})))
    # but a catch-all for one envelope only lets others through
    assert len(parse_routes(json.dumps(routes_with(None, None, envelope="sns")))) == 2


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("{", "ROUTES is not valid JSON"),
        ("[]", 'ROUTES must be {"routes": [...]} with at least one route'),
        ('{"routes": []}', 'ROUTES must be {"routes": [...]} with at least one route'),
        ('{"routes": [], "extra": 1}', 'ROUTES must be {"routes": [...]}'),
        (
            '{"routes": [{"name": "a", "name": "b"}]}',
            'ROUTES has the key "name" twice',
        ),
    ],
)
def test_malformed_routes(raw, problem):
    with pytest.raises(ConfigError) as raised:
        parse_routes(raw)
    assert str(raised.value).startswith(problem)


# -- actions and versions ---------------------------------------------------------------------


def one_route(**options: object) -> Router:
    route = {"name": "r", "base": "appAAAAAAAAAAAAAA", "table": "T", "fields": {"Id": "Id"}}
    return router({"routes": [{**route, **options}]})


def test_a_route_upserts_with_merge_on_and_creates_without():
    assert one_route(merge_on=["Id"])(msg({"Id": "a"})).action is Action.UPSERT
    assert one_route()(msg({"Id": "a"})).action is Action.CREATE
    assert one_route(action="create", merge_on=["Id"])(msg({"Id": "a"})).action is Action.CREATE
    # AND the single-table route does the same with MERGE_ON or MERGE_ON=none
    assert single_route("appAAAAAAAAAAAAAA", "T", SINGLE_MAP, ("Id",)).action is Action.UPSERT
    assert single_route("appAAAAAAAAAAAAAA", "T", SINGLE_MAP).action is Action.CREATE


def test_a_hard_delete_finds_the_row_by_its_key():
    record = one_route(action="delete", merge_on=["Id"])(msg({"Id": "a"}))
    assert (record.action, record.fields, record.key) == (
        Action.DELETE,
        {"Id": "a"},
        (key_text("a"),),
    )


def test_a_soft_delete_ticks_its_checkbox_and_sends_nothing_else():
    # GIVEN a delete route that marks rows instead of removing them
    route = one_route(
        fields={"Id": "Id", "Name": "Name"}, action="delete", merge_on=["Id"], deleted_field="Gone"
    )
    # WHEN a message is routed THEN the row is upserted with its key and the checkbox only
    record = route(msg({"Id": "a", "Name": "kept as it is"}))
    assert (record.action, record.fields) == (Action.UPSERT, {"Id": "a", "Gone": True})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),
        (2.5, 2.5),
        ("2018-05-01T12:00:00Z", 1525176000.0),
        ("2018-05-01T14:00:00+02:00", 1525176000.0),
    ],
)
def test_a_version_is_a_number_or_an_instant(value, expected):
    route = one_route(merge_on=["Id"], version={"source": "Seq", "field": "Seq"})
    record = route(msg({"Id": "a", "Seq": value}))
    # THEN the record carries it as a comparable number, and the version field is written
    assert record.version == expected and record.fields["Seq"] == value


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"Id": "a"}, 'field "Seq": required, but "Seq" is missing or empty'),
        ({"Id": "a", "Seq": "soon"}, 'the version "Seq" is neither a number nor an ISO date-time'),
    ],
)
def test_a_message_without_a_readable_version_is_poison(body, reason):
    route = one_route(merge_on=["Id"], version={"source": "Seq", "field": "Seq"})
    with pytest.raises(MappingError) as raised:
        route(msg(body))
    assert raised.value.reason.startswith(reason)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"action": "delete"}, 'route "r" action delete needs "merge_on"'),
        ({"action": "upsert"}, 'route "r" action upsert needs "merge_on"'),
        (
            {"action": "remove", "merge_on": ["Id"]},
            'route "r" "action" must be upsert, create or delete',
        ),
        (
            {"merge_on": ["Id"], "deleted_field": "Gone"},
            'route "r" "deleted_field" names the checkbox of a soft delete',
        ),
        (
            {"version": {"source": "Seq"}},
            'route "r" "version" must be {"source": ..., "field": ...}',
        ),
        (
            {"version": {"source": "$Nope", "field": "V"}},
            'route "r" "version" source "$Nope" is not an SQS',
        ),
    ],
)
def test_action_and_version_mistakes_are_config_errors(options, problem):
    route = {"name": "r", "base": "appAAAAAAAAAAAAAA", "table": "T", "fields": {"Id": "Id"}}
    with pytest.raises(ConfigError) as raised:
        parse_routes(json.dumps({"routes": [{**route, **options}]}))
    assert raised.value.problem.startswith(problem), raised.value.problem
