"""Classifying Airtable's error answers, including the field a 422 is about. No socket: the
answers are `requests.Response` objects built from Airtable's documented error bodies."""

from __future__ import annotations

import json

import pytest
import requests

from poller.airtable import answers, classify, error_of
from poller.errors import (
    RecordsRejectedError,
    SystemicSinkError,
    ThrottledError,
    TransientSinkError,
)
from poller.systemic import Cause


def answer(status: int, body: object = None, *, text: str | None = None, html: bool = False):
    response = requests.Response()
    response.status_code = status
    if text is not None:
        response._content = text.encode()
    elif body is not None:
        response._content = json.dumps(body).encode()
    else:
        response._content = b""
    if html:
        response.headers["Content-Type"] = "text/html; charset=utf-8"
    elif body is not None:
        response.headers["Content-Type"] = "application/json; charset=utf-8"
    return response


def typed(error_type: str, message: str = "") -> dict[str, object]:
    return {"error": {"type": error_type, "message": message}}


def listed(error_type: str, message: str = "") -> dict[str, object]:
    return {"errors": [{"error": error_type, "message": message}]}


PROXY_PAGE = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
    "<body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>"
)


# -- error_of: every envelope ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            answer(422, typed("UNKNOWN_FIELD_NAME", 'Unknown field name: "X"')),
            ("UNKNOWN_FIELD_NAME", 'Unknown field name: "X"'),
        ),
        (answer(404, {"error": "NOT_FOUND"}), ("NOT_FOUND", "")),
        (
            answer(429, listed("RATE_LIMIT_REACHED", "Rate limit exceeded.")),
            ("RATE_LIMIT_REACHED", "Rate limit exceeded."),
        ),
        (answer(503, text=PROXY_PAGE, html=True), ("", "503 Service Temporarily Unavailable")),
        (answer(502, text="<p>Bad &amp; gateway</p>"), ("", "Bad & gateway")),
        (answer(500, text="upstream connect error"), ("", "upstream connect error")),
        (answer(500, ["not", "an", "object"]), ("", "['not', 'an', 'object']")),
        (None, ("", "")),
    ],
    ids=[
        "typed",
        "bare string",
        "errors list",
        "html title",
        "html without title",
        "text",
        "json list",
        "no answer",
    ],
)
def test_error_of_reads_every_envelope(response, expected):
    # GIVEN an error answer in one of Airtable's envelopes (or a proxy's page)
    # WHEN read THEN its type and message come out, never the raw body's markup
    assert error_of(response) == expected


def test_a_long_text_body_is_cut_short():
    _, message = error_of(answer(500, text="x" * 5000))
    assert message == "x" * 200


# -- classify: what each answer stands for --------------------------------------------------


def test_a_value_the_field_cannot_accept_names_the_field() -> None:
    error = classify(
        answer(
            422,
            typed(
                "INVALID_VALUE_FOR_COLUMN",
                'Field "Donation Amount" cannot accept the provided value',
            ),
        )
    )
    assert isinstance(error, RecordsRejectedError)
    assert (error.error_type, error.field, error.status) == (
        "INVALID_VALUE_FOR_COLUMN",
        "Donation Amount",
        422,
    )


def test_an_unknown_field_is_systemic_and_names_the_field() -> None:
    error = classify(
        answer(422, typed("UNKNOWN_FIELD_NAME", 'Unknown field name: "Donor Display Name"'))
    )
    assert isinstance(error, SystemicSinkError) and error.cause is Cause.FIELD
    assert error.field == "Donor Display Name"


@pytest.mark.parametrize(
    ("status", "body", "cause"),
    [
        (401, typed("AUTHENTICATION_REQUIRED", "Authentication required"), Cause.TOKEN),
        (403, typed("INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND", "nope"), Cause.PERMISSION),
        (404, {"error": "NOT_FOUND"}, Cause.TABLE),
        (
            422,
            typed(
                "INVALID_RECORDS",
                "This base is or will be over its record limits with new records added.",
            ),
            Cause.BASE_FULL,
        ),
        (429, typed("PUBLIC_API_BILLING_LIMIT_EXCEEDED", "monthly limit"), Cause.BILLING),
        (429, listed("PUBLIC_API_BILLING_LIMIT_EXCEEDED", "monthly limit"), Cause.BILLING),
    ],
)
def test_refusals_every_record_would_meet_are_systemic(status, body, cause) -> None:
    # GIVEN an answer no record of the route could get past
    error = classify(answer(status, body))
    # THEN it is systemic, with its cause, not a record's fault
    assert type(error) is SystemicSinkError and error.cause is cause
    assert error.status == status


@pytest.mark.parametrize(
    "response",
    [
        answer(429, listed("RATE_LIMIT_REACHED", "Rate limit exceeded")),
        answer(429, typed("RATE_LIMIT_REACHED", "Rate limit exceeded")),
        answer(429),
    ],
    ids=["errors list", "typed", "no body"],
)
def test_a_rate_limit_429_is_a_lockout_whatever_its_envelope(response) -> None:
    error = classify(response)
    assert type(error) is ThrottledError
    assert (error.error_type, error.status) == ("RATE_LIMIT_REACHED", 429)


@pytest.mark.parametrize(
    ("response", "error_type"),
    [
        (answer(503, {"error": {"type": "SERVICE_UNAVAILABLE"}}), "SERVICE_UNAVAILABLE"),
        (answer(503, text=PROXY_PAGE, html=True), "HTTP_503"),
        (answer(500, text="oops"), "HTTP_500"),
        (answer(408), "HTTP_408"),
        (answer(409, typed("CONFLICT")), "CONFLICT"),
    ],
)
def test_outages_and_timeouts_are_transient(response, error_type) -> None:
    error = classify(response)
    assert type(error) is TransientSinkError and error.error_type == error_type


def test_a_proxy_page_is_described_by_its_title_not_its_markup() -> None:
    text = str(classify(answer(503, text=PROXY_PAGE, html=True)))
    assert "503 Service Temporarily Unavailable" in text
    assert "<" not in text and "center" not in text


@pytest.mark.parametrize(
    ("status", "body", "error_type"),
    [
        (422, typed("INVALID_RECORDS", "too many"), "INVALID_RECORDS"),
        (
            422,
            typed(
                "INVALID_MULTIPLE_CHOICE_OPTIONS",
                'Insufficient permissions to create new select option ""fax""',
            ),
            "INVALID_MULTIPLE_CHOICE_OPTIONS",
        ),
        (422, typed("INVALID_REQUEST_BODY", "bad"), "INVALID_REQUEST_BODY"),
        (413, None, "HTTP_413"),
    ],
)
def test_content_refusals_are_the_records(status, body, error_type) -> None:
    # GIVEN an answer about the request's content WHEN classified THEN the records are at
    # fault (the core splits the request to find the bad one), no field named
    error = classify(answer(status, body))
    assert type(error) is RecordsRejectedError
    assert (error.error_type, error.status, error.field) == (error_type, status, None)


def test_the_description_names_the_status_type_and_message() -> None:
    error = classify(answer(422, typed("INVALID_RECORDS", "too many")))
    assert str(error) == "Airtable answered 422 INVALID_RECORDS: too many"
    assert str(classify(answer(404, {"error": "NOT_FOUND"}))) == "Airtable answered 404 NOT_FOUND"


@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectionError("refused"),
        requests.Timeout("read timed out"),
        requests.exceptions.ChunkedEncodingError("cut"),
    ],
)
def test_no_answer_is_transient_and_says_the_write_may_have_happened(failure) -> None:
    # GIVEN a request that got no answer WHEN it fails inside the adapter's block
    with pytest.raises(TransientSinkError) as raised, answers():
        raise failure
    # THEN it is transient, named by the exception, and warns that it may have been applied
    assert raised.value.error_type == type(failure).__name__
    assert "may or may not have been applied" in str(raised.value)


def test_an_http_error_inside_the_block_is_classified() -> None:
    response = answer(422, typed("UNKNOWN_FIELD_NAME", 'Unknown field name: "X"'))
    with pytest.raises(SystemicSinkError) as raised, answers():
        raise requests.HTTPError("422", response=response)
    assert raised.value.cause is Cause.FIELD and raised.value.field == "X"


def test_other_errors_pass_through_the_block_unchanged() -> None:
    with pytest.raises(KeyError), answers():
        raise KeyError("not Airtable's")
