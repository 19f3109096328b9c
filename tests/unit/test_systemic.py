"""The breaker and the run guard: what counts as systemic, and how a run learns it is fixed."""

from __future__ import annotations

from poller.errors import RecordsRejectedError, SinkConfigurationError
from poller.mapping import FieldMap
from poller.schema import type_drift
from poller.systemic import Breaker, Cause, RunGuard, SystemicFailure, failure_of, recheck_open


def refused(status: int, error_type: str = "") -> SinkConfigurationError:
    return SinkConfigurationError(
        f"Airtable answered {status} {error_type}", error_type=error_type, status=status
    )


def rejected(field: str) -> RecordsRejectedError:
    return RecordsRejectedError(
        f'Field "{field}" cannot accept the provided value',
        error_type="INVALID_VALUE_FOR_COLUMN",
        status=422,
        field=field,
    )


class Guarded:
    def __init__(self, *, token_changes: bool = False, drift: SystemicFailure | None = None):
        self.breaker = Breaker(clock=lambda: 100.0)
        self.reports: list[SystemicFailure] = []
        self.refreshes = 0
        self.rechecks = 0

        def refresh() -> bool:
            self.refreshes += 1
            return token_changes

        def recheck(route: str, error: RecordsRejectedError) -> SystemicFailure | None:
            self.rechecks += 1
            return drift

        self.guard = RunGuard(
            self.breaker, refresh_token=refresh, recheck_field=recheck, report=self.reports.append
        )


def test_causes_of_refusals() -> None:
    assert failure_of("r", refused(401)).cause is Cause.AUTH
    assert (
        failure_of("r", refused(403, "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND")).cause is Cause.TABLE
    )
    assert failure_of("r", refused(404, "NOT_FOUND")).cause is Cause.TABLE
    assert failure_of("r", refused(422, "UNKNOWN_FIELD_NAME")).cause is Cause.FIELD


def test_a_401_with_a_rotated_secret_is_retried_not_tripped() -> None:
    # GIVEN a run whose token was rotated in the secret
    g = Guarded(token_changes=True)
    # WHEN two writers are refused with 401
    first = g.guard.on_refused("default", refused(401))
    second = g.guard.on_refused("default", refused(401))
    # THEN the secret is read once, both retry, and nothing is broken
    assert first and second
    assert g.refreshes == 1
    assert g.breaker.open_failures() == [] and g.reports == []


def test_a_401_with_the_same_token_trips_the_route_once() -> None:
    g = Guarded(token_changes=False)
    assert not g.guard.on_refused("default", refused(401))
    assert not g.guard.on_refused("default", refused(401))
    assert [f.cause for f in g.breaker.open_failures()] == [Cause.AUTH]
    assert len(g.reports) == 1  # one operator line per cause, not one per writer


def test_a_404_trips_without_reading_the_secret() -> None:
    g = Guarded(token_changes=True)
    assert not g.guard.on_refused("fundraisers", refused(404, "NOT_FOUND"))
    assert g.refreshes == 0
    assert g.breaker.is_open("fundraisers") and not g.breaker.is_open("donations")


def test_a_uniform_rejection_is_systemic_only_if_the_schema_says_so() -> None:
    drift = SystemicFailure("default", Cause.TYPE, 'field fldA "Amount" is now checkbox')
    g = Guarded(drift=drift)
    assert g.guard.on_uniform_rejection("default", rejected("Amount"))
    assert g.guard.on_uniform_rejection("default", rejected("Amount"))
    assert g.rechecks == 1  # one schema read per route and field per run
    assert [f.cause for f in g.breaker.open_failures()] == [Cause.TYPE]

    fits = Guarded(drift=None)
    assert not fits.guard.on_uniform_rejection("default", rejected("Amount"))
    assert fits.breaker.open_failures() == []


def test_recheck_clears_what_is_fixed_and_keeps_the_first_sighting() -> None:
    breaker = Breaker(clock=lambda: 5.0)
    breaker.trip(SystemicFailure("a", Cause.AUTH, "401"))
    breaker.trip(SystemicFailure("b", Cause.TABLE, "404"))
    still = recheck_open(
        breaker,
        lambda f: (
            None if f.route == "a" else SystemicFailure("b", Cause.TABLE, "404 again", since=9.0)
        ),
    )
    assert [(f.route, f.detail, f.since) for f in still] == [("b", "404 again", 5.0)]
    assert not breaker.is_open("a") and breaker.is_open("b")


def test_a_recheck_that_crashes_keeps_the_breaker_open() -> None:
    breaker = Breaker()
    breaker.trip(SystemicFailure("a", Cause.SECRET, "unreadable"))

    def boom(failure: SystemicFailure) -> SystemicFailure | None:
        raise ConnectionError("no network")

    assert [f.route for f in recheck_open(breaker, boom)] == ["a"]


MAP = FieldMap.parse(
    '{"Id": "Id", "DonationAmount": {"field": "Donation Amount", "type": "currency"}, '
    '"Name": "Donor Name"}'
)
AMOUNT = {"id": "fldAmount", "name": "Donation Amount", "type": "currency"}
NAME = {"id": "fldName", "name": "Donor Name", "type": "singleLineText"}


def test_type_drift_names_the_field_its_new_type_and_what_the_mapping_sends() -> None:
    now = dict(AMOUNT, type="checkbox")
    assert (
        type_drift(MAP, "Donation Amount", now, AMOUNT)
        == 'field fldAmount "Donation Amount" is now checkbox; the mapping sends currency'
    )


def test_type_drift_of_an_untyped_entry_compares_with_the_cold_start() -> None:
    now = dict(NAME, type="number")
    assert "was singleLineText" in (type_drift(MAP, "fldName", now, NAME) or "")
    assert type_drift(MAP, "fldName", NAME, NAME) is None


def test_no_drift_when_the_field_is_as_it_was() -> None:
    assert type_drift(MAP, "Donation Amount", AMOUNT, AMOUNT) is None
    # without a cold-start view (schema unread then), a type that accepts the entry fits
    assert type_drift(MAP, "Donation Amount", dict(AMOUNT, type="number"), None) is None


def test_a_type_that_differs_from_the_cold_start_is_drift_even_if_it_accepts() -> None:
    # issue 9: "no longer fits the mapping (or differs from the one seen at cold start)"
    drift = type_drift(MAP, "Donation Amount", dict(AMOUNT, type="number"), AMOUNT)
    assert drift == (
        'field fldAmount "Donation Amount" is now number (was currency); the mapping sends currency'
    )


def test_a_deleted_field_is_drift() -> None:
    assert type_drift(MAP, "fldAmount", None, AMOUNT) == (
        'field fldAmount "Donation Amount" is no longer in the table'
    )


def test_a_misfit_is_the_table_then_a_missing_field_then_a_type() -> None:
    from poller.systemic import cause_of_misfit

    assert cause_of_misfit({"table"}) is Cause.TABLE
    assert cause_of_misfit({"type", "field"}) is Cause.FIELD
    assert cause_of_misfit({"type"}) is Cause.TYPE
    assert cause_of_misfit({"type", "merge"}) is Cause.TYPE
