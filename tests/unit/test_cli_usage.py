"""This month's Airtable calls for `poller status`: the forecast's arithmetic, and the sums
read from SSM parameters and CloudWatch metrics (fake clients, no socket)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from poller.capacity import Capacity
from poller_ops import usage

#: The start of 16 November (a 30-day month): half of the month has passed.
MID_NOVEMBER = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "fraction"),
    [
        (datetime(2026, 11, 16, tzinfo=UTC), 0.5),
        (datetime(2026, 12, 31, 12, tzinfo=UTC), 30.5 / 31),
        (datetime(2027, 2, 8, 0, tzinfo=UTC), 7 / 28),
    ],
)
def test_the_elapsed_fraction_is_of_the_utc_month(now: datetime, fraction: float) -> None:
    assert usage.elapsed_fraction(now) == pytest.approx(fraction)


def test_the_forecast_is_the_rate_so_far_over_the_whole_month() -> None:
    # GIVEN 1,200 calls when half of November has passed
    # WHEN forecast THEN the month ends at 2,400 at this rate
    assert usage.forecast(1200, MID_NOVEMBER) == 2400
    # AND in the month's first seconds there is no rate to speak of
    assert usage.forecast(3, datetime(2026, 11, 1, 0, 0, 10, tzinfo=UTC)) is None


def test_a_forecast_is_compared_with_the_budget() -> None:
    found = usage.MonthUsage(month="2026-11", so_far=1200, forecast=2400)
    assert found.judge(2000).forecast_of_budget == pytest.approx(1.2)
    assert usage.MonthUsage(month="2026-11").judge(2000).forecast_of_budget is None


class FakeSsm:
    """get_parameters_by_path, `page` parameters a page."""

    def __init__(self, parameters: dict[str, str], page: int = 2) -> None:
        self.parameters, self.page, self.paths = parameters, page, []

    def get_parameters_by_path(self, Path: str, Recursive: bool, NextToken: str = "0") -> Any:
        self.paths.append(Path)
        names = sorted(n for n in self.parameters if n.startswith(Path + "/"))
        start = int(NextToken)
        chunk = names[start : start + self.page]
        answer: dict[str, Any] = {
            "Parameters": [{"Name": n, "Value": self.parameters[n]} for n in chunk]
        }
        if start + self.page < len(names):
            answer["NextToken"] = str(start + self.page)
        return answer


def kept(requests: int, month: str = "2026-11") -> str:
    """A parameter as the function keeps it (`Capacity.to_json`)."""
    capacity = Capacity(5.0, wall=lambda: MID_NOVEMBER.timestamp())
    return json.dumps({**capacity.to_json(), "month": month, "requests": requests})


def test_the_calls_are_the_sum_over_the_bases_of_this_month_s_parameters() -> None:
    # GIVEN three bases' parameters (over two pages), one last written in October, and one
    # that is not the function's JSON
    ssm = FakeSsm(
        {
            "/poller/pace/appA": kept(700),
            "/poller/pace/appB": kept(500),
            "/poller/pace/appC": kept(9000, month="2026-10"),
            "/poller/pace/appD": "not json",
            "/other/pace/appE": kept(1),
        }
    )
    # WHEN read
    found = usage.from_ssm(ssm, "/poller/pace", MID_NOVEMBER)
    # THEN October's count is 0 (the month turned), the bad one is skipped and said
    assert (found.source, found.so_far) == ("ssm", 1200)
    assert found.by_base == {"appA": 700, "appB": 500, "appC": 0}
    assert found.forecast == 2400 and "1 unreadable" in found.note


class FakeCloudWatch:
    def __init__(self, metrics: list[tuple[dict[str, str], list[float]]]) -> None:
        self.metrics = metrics
        self.asked: list[dict[str, Any]] = []

    def list_metrics(self, Namespace: str, MetricName: str) -> Any:
        return {
            "Metrics": [
                {
                    "Namespace": Namespace,
                    "MetricName": MetricName,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                }
                for dims, _ in self.metrics
            ]
        }

    def get_metric_statistics(self, **request: Any) -> Any:
        self.asked.append(request)
        dims = {d["Name"]: d["Value"] for d in request["Dimensions"]}
        (sums,) = [s for d, s in self.metrics if d == dims]
        return {"Datapoints": [{"Sum": s} for s in sums]}


def test_cloudwatch_sums_each_base_of_the_service_since_the_first() -> None:
    # GIVEN the metric for two bases of this service, one of another service, and the
    # run counts without a Base dimension
    cloudwatch = FakeCloudWatch(
        [
            ({"service": "donations", "Base": "appA"}, [100.0, 250.0]),
            ({"service": "donations", "Base": "appB"}, [50.0]),
            ({"service": "other", "Base": "appA"}, [9999.0]),
            ({"service": "donations"}, [7777.0]),
        ]
    )
    # WHEN read
    found = usage.from_cloudwatch(
        cloudwatch, "SqsAirtablePoller", "donations", MID_NOVEMBER, "AirtableRequests"
    )
    # THEN only this service's bases count, summed since the 1st of the month, 00:00 UTC
    assert (found.source, found.so_far, found.by_base) == (
        "cloudwatch",
        400,
        {"appA": 350, "appB": 50},
    )
    assert {r["StartTime"] for r in cloudwatch.asked} == {datetime(2026, 11, 1, tzinfo=UTC)}
    assert all(r["Statistics"] == ["Sum"] for r in cloudwatch.asked)


def test_cloudwatch_without_data_says_so_and_has_no_count() -> None:
    found = usage.from_cloudwatch(FakeCloudWatch([]), "Ns", None, MID_NOVEMBER, "AirtableRequests")
    assert (
        found.source is None and found.so_far is None and "no AirtableRequests data" in found.note
    )
