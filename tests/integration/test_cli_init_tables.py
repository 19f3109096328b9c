"""`poller init-tables` against the Airtable emulator over HTTP (real pyairtable, Airtable's
real 5 requests/s per base, meta requests counted), with a two-route ROUTES config whose
tables live in two empty bases."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from airtable_emulator import SCOPE_READ, SCOPE_SCHEMA, SCOPE_WRITE
from devstack import mirror
from devstack.stack import LocalStack

from poller_ops.cli import main

BASE_A = "appInitTablesA001"
BASE_B = "appInitTablesB001"
ROUTES = {
    "routes": [
        {
            "name": "donations",
            "when": {"DonationAmount": {"exists": True}},
            "base": BASE_A,
            "table": "Donations",
            "fields": {
                "Id": "Id",
                "DonationAmount": {"field": "Donation Amount", "type": "currency"},
                "CreationDate": {"field": "Creation Date", "type": "dateTime"},
            },
            "merge_on": ["Id"],
        },
        {
            "name": "fundraisers",
            "when": {"$Envelope.detail-type": "FundraiserCreated"},
            "base": BASE_B,
            "table": "Fundraisers",
            "fields": {"FundraiserId": "Fundraiser Id", "Name": "Name"},
            "merge_on": ["Fundraiser Id"],
        },
        {  # a second event type written to the first route's table: one table, merged
            "name": "donation-notes",
            "when": {"Note": {"exists": True}},
            "base": BASE_A,
            "table": "Donations",
            "fields": {"Id": "Id", "Note": "Note"},
            "merge_on": ["Id"],
        },
    ]
}
NO_WRITE_SCOPE = "patCannotChangeSchema"

Cli = Callable[..., tuple[int, str, str]]


class Terminal(io.StringIO):
    """Standard input from a person at a terminal, who types `answer`."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def env_file(stack: LocalStack, tmp_path: Path) -> Path:
    """ROUTES into two empty bases, and no queue at all: init-tables needs none."""
    for base in (BASE_A, BASE_B):
        stack.emulator.define_base(base, {"tables": []})
    env = stack.poller_env(
        AIRTABLE_BASE_ID=None,
        AIRTABLE_TABLE=None,
        FIELD_MAP=None,
        MERGE_ON=None,
        QUEUE_URL=None,
        DEAD_LETTER_QUEUE_URL=None,
        ROUTES=json.dumps(ROUTES),
    )
    path = tmp_path / "env.json"
    path.write_text(json.dumps(env))
    return path


@pytest.fixture
def cli(
    env_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cli]:
    """`poller ARGS --env-file FILE` in-process, with `stdin` as its standard input (no
    terminal unless it is a `Terminal`): (exit status, stdout, stderr)."""
    monkeypatch.setenv("POLLER_ENV_FILE", "")
    for name in [*json.loads(env_file.read_text()), "QUEUE_URL", "FIELD_MAP_FILE"]:
        monkeypatch.delenv(name, raising=False)

    def run(*args: str, stdin: io.StringIO | None = None, env: Path = env_file) -> Any:
        monkeypatch.setattr("sys.stdin", stdin or io.StringIO(""))
        capsys.readouterr()
        status = main([*args, "--env-file", str(env)])
        out, err = capsys.readouterr()
        return status, out, err

    yield run


def fields_of(stack: LocalStack, base: str, table: str) -> dict[str, str]:
    found = [t for t in stack.emulator.schema(base)["tables"] if t["name"] == table]
    return {f["name"]: f["type"] for f in found[0]["fields"]} if found else {}


def tables_of(stack: LocalStack, base: str) -> list[str]:
    return [t["name"] for t in stack.emulator.schema(base)["tables"]]


def next_second() -> None:
    """Let Airtable's 1 s window pass between two commands, as between two commands a
    person types: each command is a new client with its own limiter, and Airtable counts
    every client's requests to a base (three quick runs would be 6 requests in a second)."""
    time.sleep(1.05)


def keys(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield key
            yield from keys(value)
    elif isinstance(data, list):
        for item in data:
            yield from keys(item)


def test_it_creates_every_route_s_table_then_finds_everything_exists_then_leaves_a_misfit(
    cli, stack
):
    # GIVEN two routes' tables in two empty bases (a third route shares the first's table)
    # WHEN init-tables runs with --yes
    status, out, err = cli("init-tables", "--yes")
    # THEN both tables exist, the shared one once with both routes' fields, typed, keyed
    assert status == 0, out + err
    assert fields_of(stack, BASE_A, "Donations") == {
        "Id": "singleLineText",
        "Donation Amount": "currency",
        "Creation Date": "dateTime",
        "Note": "singleLineText",
    }
    assert fields_of(stack, BASE_B, "Fundraisers") == {
        "Fundraiser Id": "singleLineText",
        "Name": "singleLineText",
    }
    assert tables_of(stack, BASE_A) == ["Donations"]
    primary = stack.emulator.schema(BASE_B)["tables"][0]
    assert primary["primaryFieldId"] == primary["fields"][0]["id"]
    assert primary["fields"][0]["name"] == "Fundraiser Id"
    # AND the output showed the plan, then what was done
    assert f'base {BASE_A}: create table "Donations" with "Id" (singleLineText) (primary)' in out
    assert f'base {BASE_A}: created table "Donations" with 4 fields' in out
    assert f'base {BASE_B}: created table "Fundraisers" with 2 fields' in out
    assert out.rstrip().endswith("done: 2 change(s)")

    # WHEN it runs again, without --yes and without a terminal
    next_second()
    status, out, err = cli("init-tables")
    # THEN it says everything exists, and asks nothing
    assert status == 0, err
    assert f'base {BASE_A}, table "Donations": every mapped field exists' in out
    assert f'base {BASE_B}, table "Fundraisers": every mapped field exists' in out
    assert "nothing to create: every table and mapped field exists" in out
    assert "create these?" not in err

    # GIVEN then Donation Amount turned into a checkbox, and Note deleted, in Airtable
    stack.emulator.retype_field(BASE_A, "Donations", "Donation Amount", "checkbox")
    stack.emulator.delete_field(BASE_A, "Donations", "Note")
    # WHEN it runs again
    next_second()
    status, out, err = cli("init-tables", "--yes")
    # THEN the missing field is added, and the checkbox is reported and left a checkbox: exit 1
    assert status == 1 and not err, err
    assert (
        f'base {BASE_A}, table "Donations": left as it is: route "donations" writes currency to '
        '"Donation Amount", a checkbox field'
    ) in out
    assert f'base {BASE_A}, table "Donations": added field "Note" (singleLineText)' in out
    assert "1 misfit(s) left alone" in out
    fields = fields_of(stack, BASE_A, "Donations")
    assert fields["Donation Amount"] == "checkbox" and fields["Note"] == "singleLineText"
    # AND no request was throttled on either base
    assert stack.emulator.stats.throttled == 0


def test_without_a_terminal_and_without_yes_it_creates_nothing(cli, stack):
    # WHEN init-tables runs with changes to make, no --yes, and stdin not a terminal
    status, out, _ = cli("init-tables")
    next_second()
    json_status, json_out, _ = cli("init-tables", "--json")
    # THEN it prints the plan, says to pass --yes, exits 1, and nothing was created
    assert status == 1 and json_status == 1
    assert f'base {BASE_B}: create table "Fundraisers"' in out
    assert "pass --yes to create these; nothing was changed" in out
    assert tables_of(stack, BASE_A) == [] and tables_of(stack, BASE_B) == []
    # AND the JSON plan says the same, every key at every depth an identifier
    data = json.loads(json_out)
    assert data["ok"] is False and data["confirmed"] is False and data["done"] == []
    assert [t["table"] for t in data["plan"]["create_tables"]] == ["Donations", "Fundraisers"]
    found = list(keys(data))
    assert "dateFormat" in found and "symbol" in found
    assert [k for k in found if not k.isidentifier()] == []


def test_at_a_terminal_it_asks_and_only_yes_creates(cli, stack):
    # WHEN a person answers "n", then "y"
    status, out, err = cli("init-tables", stdin=Terminal("n\n"))
    assert status == 1 and "create these? [y/N]" in err
    assert "not confirmed; nothing was changed" in out and tables_of(stack, BASE_B) == []
    next_second()
    status, out, err = cli("init-tables", stdin=Terminal("y\n"))
    # THEN only the "y" created the tables
    assert status == 0, err
    assert tables_of(stack, BASE_A) == ["Donations"] and tables_of(stack, BASE_B) == ["Fundraisers"]


def test_a_token_without_schema_write_gets_one_line_naming_the_scope(cli, stack, env_file):
    # GIVEN a token that may read the schema but not change it
    stack.emulator.add_token(NO_WRITE_SCOPE, (SCOPE_READ, SCOPE_WRITE, SCOPE_SCHEMA))
    env = {**json.loads(env_file.read_text()), "AIRTABLE_TOKEN": NO_WRITE_SCOPE}
    env_file.write_text(json.dumps(env))
    # WHEN init-tables runs
    status, out, err = cli("init-tables", "--yes")
    # THEN one clear line names the missing scope, without a traceback or the token
    assert status == 1
    assert err.startswith("poller init-tables: could not create table")
    assert "schema.bases:write" in err and "nothing was changed before this" in err
    assert "Traceback" not in out + err and NO_WRITE_SCOPE not in out + err
    assert tables_of(stack, BASE_A) == []


def test_the_readme_s_single_table_command_works_without_a_queue(cli, stack, env_file, tmp_path):
    # GIVEN only what the README's Deploy step 3 sets: the token, the base and, on the
    # command line, AIRTABLE_TABLE, FIELD_MAP_FILE and MERGE_ON (no QUEUE_URL)
    path = tmp_path / "readme.json"
    path.write_text(
        json.dumps(
            {
                "AIRTABLE_TOKEN": json.loads(env_file.read_text())["AIRTABLE_TOKEN"],
                "AIRTABLE_API_URL": stack.airtable_url,
                "AIRTABLE_BASE_ID": BASE_A,
                "AIRTABLE_TABLE": "Donations",
                "FIELD_MAP_FILE": "field_maps/donations.json",
                "MERGE_ON": "Id",
            }
        )
    )
    # WHEN init-tables runs THEN the Donations table is created with its six typed fields
    status, out, err = cli("init-tables", "--yes", env=path)
    assert status == 0, err
    assert f'base {BASE_A}: created table "Donations" with 6 fields' in out
    assert fields_of(stack, BASE_A, "Donations")["Donation Amount"] == "currency"


def test_a_bad_configuration_lists_every_problem(cli, env_file, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**json.loads(env_file.read_text()), "ROUTES": '{"routes": []}'}))
    status, out, err = cli("init-tables", env=path)
    assert status == 1 and out.startswith("configuration is invalid:")
    assert "ROUTES" in out and "Traceback" not in out + err


# -- the faithful mirror ---------------------------------------------------------------------

MIRROR_BASE = "appMirrorEmpty001"


def mirror_env(stack: LocalStack, tmp_path: Path, routes: dict[str, Any]) -> Path:
    path = tmp_path / f"mirror-{len(list(tmp_path.iterdir()))}.json"
    env = stack.poller_env(
        AIRTABLE_BASE_ID=None,
        AIRTABLE_TABLE=None,
        FIELD_MAP=None,
        MERGE_ON=None,
        ROUTES=json.dumps(routes),
        POWERTOOLS_METRICS_DISABLED="true",
    )
    path.write_text(json.dumps(env))
    return path


def with_choices(routes: dict[str, Any]) -> dict[str, Any]:
    """The routes contract with the choices of its selects declared."""
    routes = json.loads(json.dumps(routes))
    fields = routes["routes"][1]["fields"]
    fields["Status"]["choices"] = ["paid", "refunded"]
    fields["Tags"]["choices"] = ["gift", "recurring", "matched"]
    return routes


def test_the_mirror_s_tables_are_created_in_an_empty_base_and_pass_the_run_s_checks(
    cli, stack, tmp_path
):
    # GIVEN the routes contract (fundraisers, versioned donations linking them, a soft
    # delete) into an empty base
    stack.emulator.define_base(MIRROR_BASE, {"tables": []})
    env = mirror_env(stack, tmp_path, mirror.routes(MIRROR_BASE))
    # WHEN init-tables runs
    status, out, err = cli("init-tables", "--yes", env=env)
    # THEN both tables exist, every field of the contract's base with its type, the link
    # pointing at Fundraisers
    assert status == 0, out + err
    made = {t["name"]: t for t in stack.emulator.schema(MIRROR_BASE)["tables"]}
    for table in mirror.schema()["tables"]:
        types = {f["name"]: f["type"] for f in made[table["name"]]["fields"]}
        assert {f["name"]: f["type"] for f in table["fields"]}.items() <= types.items()
    link = next(f for f in made["Donations"]["fields"] if f["name"] == "Fundraiser")
    assert link["options"]["linkedTableId"] == made["Fundraisers"]["id"]
    # AND the selects created without choices were noted
    assert (
        'note: base appMirrorEmpty001, table "Donations": "Tags" is created without options' in out
    )
    # AND the checks before every run pass on every route
    next_second()
    status, out, err = cli("check-config", env=env)
    assert status == 0, out + err
    assert stack.emulator.stats.throttled == 0


def test_a_run_mirrors_into_the_tables_init_tables_made(cli, stack, tmp_path):
    # GIVEN the tables made from the routes contract, its selects' choices declared
    stack.emulator.define_base(MIRROR_BASE, {"tables": []})
    env = mirror_env(stack, tmp_path, with_choices(mirror.routes(MIRROR_BASE)))
    status, out, err = cli("init-tables", "--yes", env=env)
    assert status == 0, out + err
    # AND a fundraiser, a donation linking it in two versions, and another donation deleted
    events = [
        mirror.Event("FundraiserCreated", {"FundraiserId": "fr-1", "Name": "Spring"}),
        mirror.Event(
            "DonationCreated",
            {
                "Id": "d-1",
                "DonationAmount": 5,
                "Status": "paid",
                "FundraiserId": "fr-1",
                "Tags": ["gift"],
                "ReceiptUrl": "https://example.com/r.pdf",
                "Version": 1,
            },
        ),
        mirror.Event(
            "DonationUpdated",
            {
                "Id": "d-1",
                "DonationAmount": 7,
                "Status": "refunded",
                "FundraiserId": "fr-1",
                "Tags": ["gift", "matched"],
                "Version": 2,
            },
        ),
        mirror.Event(
            "DonationCreated",
            {
                "Id": "d-2",
                "DonationAmount": 3,
                "Status": "paid",
                "FundraiserId": "fr-1",
                "Version": 1,
            },
        ),
        mirror.Event("DonationDeleted", {"Id": "d-2", "Version": 2}),
    ]
    for event in events:
        stack.sqs.send_message(QueueUrl=stack.queue_url, **event.message())
    # WHEN the poller runs
    next_second()
    status, out, err = cli("run", "--no-progress", "--json", env=env)
    # THEN every event landed: the newest version, linked to the fundraiser's row, and the
    # deleted donation ticked
    assert status == 0, out + err
    assert json.loads(out)["summary"]["dead_lettered"] == 0
    (fundraiser,) = stack.emulator.records(MIRROR_BASE, "Fundraisers")
    donations = {
        r["fields"]["Id"]: r["fields"] for r in stack.emulator.records(MIRROR_BASE, "Donations")
    }
    assert donations["d-1"]["Status"] == "refunded" and donations["d-1"]["Version"] == 2
    assert donations["d-1"]["Fundraiser"] == [fundraiser["id"]]
    assert donations["d-1"]["Tags"] == ["gift", "matched"]
    assert donations["d-2"].get("Deleted") is True
