"""Classifying Airtable's error answers, including the field a 422 is about. No socket: the
answers are `requests.Response` objects built from Airtable's documented error bodies."""

from __future__ import annotations

import json

import pytest
import requests

from poller.airtable import classify_http_error
from poller.errors import (
    RecordsRejectedError,
    SinkConfigurationError,
    ThrottledError,
    TransientSinkError,
)


def answer(status: int, body: object) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    return requests.HTTPError(f"{status}", response=response)


def typed(error_type: str, message: str) -> dict[str, object]:
    return {"error": {"type": error_type, "message": message}}


def test_a_value_the_field_cannot_accept_names_the_field() -> None:
    error = classify_http_error(
        answer(
            422,
            typed(
                "INVALID_VALUE_FOR_COLUMN",
                'Field "Donation Amount" cannot accept the provided value',
            ),
        )
    )
    assert isinstance(error, RecordsRejectedError)
    assert (error.error_type, error.field) == ("INVALID_VALUE_FOR_COLUMN", "Donation Amount")


def test_an_unknown_field_is_the_configuration_and_names_the_field() -> None:
    error = classify_http_error(
        answer(422, typed("UNKNOWN_FIELD_NAME", 'Unknown field name: "Donor Display Name"'))
    )
    assert isinstance(error, SinkConfigurationError)
    assert error.field == "Donor Display Name"


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, typed("AUTHENTICATION_REQUIRED", "Authentication required"), SinkConfigurationError),
        (403, typed("INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND", "nope"), SinkConfigurationError),
        (404, {"error": "NOT_FOUND"}, SinkConfigurationError),
        (429, {"errors": [{"error": "RATE_LIMIT_REACHED", "message": "slow"}]}, ThrottledError),
        (503, {"error": {"type": "SERVICE_UNAVAILABLE"}}, TransientSinkError),
        (422, typed("INVALID_RECORDS", "too many"), RecordsRejectedError),
    ],
)
def test_every_envelope_is_classified(status: int, body: object, kind: type) -> None:
    error = classify_http_error(answer(status, body))
    assert type(error) is kind
    assert error.status == status
    assert error.field is None
