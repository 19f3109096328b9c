"""The one table of settings: how each value is read, the table's own consistency, and
docs/configuration.md's tables, which must say what the table says.

Run this file to print the documentation's tables from the declaration, to paste into
docs/configuration.md (only the `meaning` column is prose of the page's own):

    .venv/bin/python tests/unit/test_settings.py
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from poller.errors import ConfigError
from poller.settings import BY_NAME, RETIRED, SETTINGS, Setting, read

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "configuration.md"
IMPORTANCE = ("high", "tuning", "deprecated")
#: The most settings a user is meant to set (the high and tuning ones).
MOST_SETTINGS = 20
KINDS = ("text", "url", "int", "float", "bool", "choice")
#: The page writes a range of numbers with an en dash: 0\u201320.
RANGE = "\u2013"
#: A table of the page is the one after its marker: `<!-- settings: high -->`.
_MARKER = re.compile(r"^<!-- settings: (?P<name>[a-z]+) -->$", re.M)


# -- the generator: the documentation's cells, from the declaration ---------------------------


def default_cell(setting: Setting) -> str:
    """The `default` cell: the value a run uses when the variable is unset, or a dash."""
    value = setting.default
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def values_cell(setting: Setting) -> str:
    """The `values` cell: what the variable accepts, from its kind and bounds."""
    if setting.kind in ("int", "float"):
        assert setting.low is not None and setting.high is not None
        return f"{setting.low:g}{RANGE}{setting.high:g}"
    if setting.kind == "choice":
        return ", ".join(f"`{c}`" for c in setting.choices)
    if setting.kind == "bool":
        return "`true`, `false`"
    if setting.kind == "url":
        return "http(s) URL"
    return "text"


def markdown() -> str:
    """Every table of the page that this module checks, with the declared docs as meanings."""
    parts = []
    for importance in IMPORTANCE:
        rows = [
            f"| `{s.name}` | {default_cell(s)} | {values_cell(s)} | {s.doc} |"
            for s in SETTINGS
            if s.importance == importance
        ]
        parts.append(
            "\n".join(
                [
                    f"<!-- settings: {importance} -->",
                    "| variable | default | values | meaning |",
                    "| --- | --- | --- | --- |",
                    *rows,
                ]
            )
        )
    retired = [f"| `{name}` | {why} |" for name, why in RETIRED.items()]
    parts.append(
        "\n".join(["<!-- settings: retired -->", "| variable | why |", "| --- | --- |", *retired])
    )
    aliases = [f"| `{a}` | `{s.name}` |" for s in SETTINGS for a in s.aliases]
    parts.append(
        "\n".join(
            ["<!-- settings: aliases -->", "| old name | set instead |", "| --- | --- |", *aliases]
        )
    )
    return "\n\n".join(parts) + "\n"


# -- the page's tables, parsed ----------------------------------------------------------------


def tables(text: str) -> dict[str, list[list[str]]]:
    """Each marked table's rows (header and separator left out), as lists of cells."""
    found: dict[str, list[list[str]]] = {}
    for marker in _MARKER.finditer(text):
        name = marker.group("name")
        assert name not in found, f"two tables are marked {name!r}"
        lines = text[marker.end() :].lstrip("\n").splitlines()
        rows = []
        for line in lines:
            if not line.startswith("|"):
                break
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        assert len(rows) >= 2, f"the {name!r} marker is not followed by a table"
        found[name] = rows[2:]
    return found


def name_of(cell: str) -> str:
    match = re.fullmatch(r"`([A-Z][A-Z0-9_]*)`", cell)
    assert match, f"{cell!r} is not a variable name in backticks"
    return match.group(1)


def documented(text: str) -> list[tuple[str, str, str, str]]:
    """(name, default cell, values cell, importance) of each row of the settings tables."""
    found = tables(text)
    rows = []
    for importance in IMPORTANCE:
        assert importance in found, f"docs/configuration.md has no {importance!r} table"
        for cells in found[importance]:
            assert len(cells) == 4, cells
            rows.append((name_of(cells[0]), cells[1], cells[2], importance))
    return rows


def declared() -> list[tuple[str, str, str, str]]:
    return [(s.name, default_cell(s), values_cell(s), s.importance) for s in SETTINGS]


def differences(text: str) -> list[str]:
    """What the page's tables say that the declaration does not, one line each."""
    problems = []
    rows = documented(text)
    names = [r[0] for r in rows]
    problems += [
        f"{n} appears {names.count(n)} times" for n in sorted(set(names)) if names.count(n) > 1
    ]
    problems += [f"{n} is not a declared setting" for n in names if n not in BY_NAME]
    problems += [f"{s.name} is missing" for s in SETTINGS if s.name not in names]
    wanted = {r[0]: r for r in declared()}
    for row in rows:
        if row[0] in wanted and row != wanted[row[0]]:
            problems.append(
                f"{row[0]}: the page says {row[1:]}, the declaration {wanted[row[0]][1:]}"
            )
    found = tables(text)
    retired = {name_of(cells[0]) for cells in found.get("retired", [])}
    if retired != set(RETIRED):
        problems.append(
            f"retired names: the page has {sorted(retired)}, the declaration {sorted(RETIRED)}"
        )
    aliases = {(name_of(c[0]), name_of(c[1])) for c in found.get("aliases", [])}
    expected = {(a, s.name) for s in SETTINGS for a in s.aliases}
    if aliases != expected:
        problems.append(
            f"aliases: the page has {sorted(aliases)}, the declaration {sorted(expected)}"
        )
    return problems


def test_the_configuration_page_tables_say_what_the_declaration_says():
    # GIVEN docs/configuration.md WHEN its tables are read
    # THEN every declared setting appears once, in its importance's table, with its default
    # and values; nothing undeclared appears; the retired names and the aliases are all there
    assert differences(PAGE.read_text(encoding="utf-8")) == []


def test_the_generated_tables_pass_the_check():
    # GIVEN the tables this module generates THEN they are what the check accepts
    assert differences(markdown()) == []


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda t: t.replace("| `WAIT_TIME_SECONDS` | `1` |", "| `WAIT_TIME_SECONDS` | `2` |"),
            "WAIT_TIME_SECONDS: the page says",
        ),
        (
            lambda t: t.replace(
                f"| `AIRTABLE_MAX_RPS` | `5` | 1{RANGE}50 |",
                f"| `AIRTABLE_MAX_RPS` | `5` | 0.1{RANGE}50 |",
            ),
            "AIRTABLE_MAX_RPS: the page says",
        ),
        (
            lambda t: t.replace("| `MERGE_ON` |", "| `MERGE_KEYS` |"),
            "MERGE_KEYS is not a declared setting",
        ),
        (lambda t: re.sub(r"^\| `WIRE_DEBUG` .*\n", "", t, flags=re.M), "WIRE_DEBUG is missing"),
        (
            lambda t: t.replace(
                "<!-- settings: tuning -->\n| variable | default | values | meaning |\n| --- | --- | --- | --- |\n",
                "<!-- settings: tuning -->\n| variable | default | values | meaning |\n| --- | --- | --- | --- |\n| `QUEUE_URL` | — | http(s) URL | again |\n",
            ),
            "QUEUE_URL appears 2 times",
        ),
        (lambda t: re.sub(r"^\| `SCHEMA_CHECK` .*\n", "", t, flags=re.M), "retired names:"),
        (lambda t: re.sub(r"^\| `ROUTES_FILE` .*\n", "", t, flags=re.M), "aliases:"),
    ],
    ids=["default", "bounds", "undeclared", "missing", "twice", "retired", "alias"],
)
def test_a_stale_page_would_be_caught(edit, problem):
    # GIVEN the generated tables with one mistake an edit could make
    text = edit(markdown())
    assert text != markdown()
    # WHEN checked THEN the mistake is named
    assert any(p.startswith(problem) for p in differences(text)), differences(text)


def test_a_setting_moved_to_the_other_table_would_be_caught():
    text = markdown()
    row = next(line for line in text.splitlines() if line.startswith("| `ENVELOPE` |"))
    moved = text.replace(row + "\n", "").replace(
        "<!-- settings: high -->\n| variable | default | values | meaning |\n| --- | --- | --- | --- |\n",
        "<!-- settings: high -->\n| variable | default | values | meaning |\n| --- | --- | --- | --- |\n"
        + row
        + "\n",
    )
    assert any(p.startswith("ENVELOPE: the page says") for p in differences(moved))


def test_the_runtime_table_names_only_variables_the_platform_or_libraries_read():
    # GIVEN the page's table of variables that are not settings (Lambda's, Powertools', boto3's)
    rows = tables(PAGE.read_text(encoding="utf-8"))["runtime"]
    names = [name_of(cells[0]) for cells in rows]
    # THEN each is one of theirs, and none is a setting, an alias or a retired name
    assert names and all(re.match(r"(POWERTOOLS|AWS|LAMBDA)_", n) for n in names), names
    ours = set(BY_NAME) | set(RETIRED) | {a for s in SETTINGS for a in s.aliases}
    assert not ours & set(names)


# -- the declaration is consistent ------------------------------------------------------------


def test_every_setting_is_declared_completely():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    for s in SETTINGS:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", s.name), s.name
        assert s.kind in KINDS and s.importance in IMPORTANCE and s.doc.strip(), s
        if s.kind in ("int", "float"):
            assert s.low is not None and s.high is not None and s.low <= s.high, s
            assert s.default is None or s.low <= s.default <= s.high, s
        if s.kind == "choice":
            assert s.choices and s.default in s.choices, s
        if s.default is not None:
            assert s.parse(str(s.default).lower()) == s.default, s


def test_a_user_meets_at_most_twenty_settings():
    # GIVEN the one table of settings THEN at most 20 are meant to be set (deprecated ones are
    # still read, with a warning, but neither the template nor the docs' main tables offer them)
    current = [s.name for s in SETTINGS if s.importance in ("high", "tuning")]
    assert len(current) <= MOST_SETTINGS, current


def test_a_deprecated_setting_is_read_with_one_warning_that_says_what_to_do():
    # GIVEN each deprecated setting set to a value it accepts WHEN read
    for s in (s for s in SETTINGS if s.importance == "deprecated"):
        found = read({s.name: str(s.high if s.kind in ("int", "float") else "x")})
        # THEN its value is read, and one warning names it and says what to set instead
        assert found[s.name] is not None and found.errors == []
        assert found.warnings == [f"{s.name} is deprecated: {s.doc}"]


def test_no_name_is_both_read_and_retired_or_an_alias_twice():
    aliases = [a for s in SETTINGS for a in s.aliases]
    assert len(aliases) == len(set(aliases))
    assert not set(aliases) & set(BY_NAME)
    assert not set(RETIRED) & (set(BY_NAME) | set(aliases))


def test_every_setting_has_its_default_when_unset():
    found = read({})
    assert found.errors == [] and found.warnings == [] and found.given == {}
    assert found.values == {s.name: s.default for s in SETTINGS}


# -- reading one value ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("false", False),
        ("0", False),
        ("No", False),
        ("off", False),
    ],
)
def test_a_flag_takes_the_usual_spellings(raw, expected):
    assert BY_NAME["WIRE_DEBUG"].parse(raw) is expected


@pytest.mark.parametrize(
    ("name", "raw", "problem"),
    [
        ("WIRE_DEBUG", "maybe", "must be true or false, got 'maybe'"),
        ("ENVELOPE", "kinesis", "must be one of auto, raw, sns, eventbridge, got 'kinesis'"),
        ("QUEUE_URL", "sqs/queue", "must be an http(s) URL, got 'sqs/queue'"),
        ("QUEUE_URL", "https://", "must be an http(s) URL"),
        ("WAIT_TIME_SECONDS", "1.5", "must be a whole number between 0 and 20, got '1.5'"),
        ("WAIT_TIME_SECONDS", "-1", "must be between 0 and 20, got -1"),
        ("AIRTABLE_MAX_RPS", "0.5", "must be between 1 and 50, got 0.5"),
        ("AIRTABLE_MAX_RPS", "fast", "must be a number between 1 and 50, got 'fast'"),
    ],
)
def test_a_bad_value_names_the_setting_and_what_it_accepts(name, raw, problem):
    with pytest.raises(ConfigError) as raised:
        BY_NAME[name].parse(raw)
    assert raised.value.variable == name and raised.value.problem.startswith(problem)


def test_a_choice_is_read_case_insensitively():
    assert BY_NAME["ENVELOPE"].parse("EventBridge") == "eventbridge"


def test_numbers_keep_their_kind():
    assert BY_NAME["WAIT_TIME_SECONDS"].parse("20") == 20
    assert type(BY_NAME["WAIT_TIME_SECONDS"].parse("20")) is int
    assert type(BY_NAME["AIRTABLE_MAX_RPS"].parse("5")) is float


# -- reading an environment --------------------------------------------------------------------


def test_read_collects_every_problem_and_keeps_the_default_of_a_bad_value():
    found = read({"WAIT_TIME_SECONDS": "99", "ENVELOPE": "x", "AIRTABLE_MAX_RPS": "2"})
    assert [e.variable for e in found.errors] == ["ENVELOPE", "WAIT_TIME_SECONDS"]
    assert found["WAIT_TIME_SECONDS"] == 1 and found["ENVELOPE"] == "auto"
    assert found["AIRTABLE_MAX_RPS"] == 2.0
    assert found.given == {
        "ENVELOPE": "ENVELOPE",
        "WAIT_TIME_SECONDS": "WAIT_TIME_SECONDS",
        "AIRTABLE_MAX_RPS": "AIRTABLE_MAX_RPS",
    }


def test_empty_and_blank_count_as_unset():
    found = read({"WAIT_TIME_SECONDS": "", "ENVELOPE": "   ", "SCHEMA_CHECK": " "})
    assert found.errors == [] and found.warnings == [] and found.given == {}
    assert found["WAIT_TIME_SECONDS"] == 1


def test_values_are_read_stripped():
    assert read({"MERGE_ON": "  Id \n"})["MERGE_ON"] == "Id"


def test_an_alias_is_read_under_the_setting_with_one_warning_and_named_in_its_problems():
    found = read({"ROUTES_FILE": "routes.json"})
    assert found["ROUTES"] == "routes.json" and found.given == {"ROUTES": "ROUTES_FILE"}
    assert found.warnings == ["ROUTES_FILE is deprecated: set ROUTES (it takes the same value)"]


def test_a_setting_and_its_alias_together_is_an_error_naming_both():
    found = read({"FIELD_MAP": '{"Id": "Id"}', "FIELD_MAP_FILE": "m.json"})
    assert [str(e) for e in found.errors] == [
        "FIELD_MAP is set twice (FIELD_MAP and FIELD_MAP_FILE); keep FIELD_MAP"
    ]
    assert found["FIELD_MAP"] == '{"Id": "Id"}'


def test_a_retired_name_is_one_warning_with_its_reason_whatever_its_value():
    found = read({"STOP_MARGIN_SECONDS": "not even a number"})
    assert found.errors == []
    assert found.warnings == [
        f"STOP_MARGIN_SECONDS is no longer read: {RETIRED['STOP_MARGIN_SECONDS']}"
    ]


if __name__ == "__main__":
    print(markdown(), end="")
