"""This month's Airtable API calls, and a forecast for the whole month (for `poller status`).

Two sources, the first that is set up:

* **SSM**: the function keeps each base's pace and its Airtable requests this month (UTC)
  under PACE_PARAMETER_PREFIX, one parameter per base (`poller.paces.PaceStore`:
  `{"limit", "probe_interval", "next_probe_at", "month", "requests"}`); the calls are the
  sum over the bases of `requests`, for the parameters whose `month` is this one;
* **CloudWatch**: the `AirtableRequests` metric the function publishes per run and base
  (`poller.telemetry.AIRTABLE_REQUESTS`, dimensions `service` and `Base`), summed since the
  1st of the month, 00:00 UTC.

The forecast is the calls so far over the elapsed fraction of the month: the month's total
if the rate so far holds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

#: A day, the period of the CloudWatch sums (a month is at most 31 of them).
DAY_SECONDS = 86_400


@dataclass
class MonthUsage:
    """The Airtable calls of this month so far: where they were read (`source`: "ssm",
    "cloudwatch" or None when neither could tell), per base, and the forecast."""

    month: str
    source: str | None = None
    where: str = ""
    so_far: int | None = None
    by_base: dict[str, int] = field(default_factory=dict)
    elapsed_fraction: float = 0.0
    forecast: int | None = None
    budget: int | None = None
    forecast_of_budget: float | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def judge(self, budget: int | None) -> MonthUsage:
        """Compare the forecast with `budget` (MonthlyCallBudget), when both are known."""
        self.budget = budget
        if budget and self.forecast is not None:
            self.forecast_of_budget = round(self.forecast / budget, 4)
        return self


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_end(now: datetime) -> datetime:
    start = month_start(now)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def elapsed_fraction(now: datetime) -> float:
    """How much of this month (UTC) has passed, from 0 to 1."""
    start, end = month_start(now), month_end(now)
    return (now.astimezone(UTC) - start) / (end - start)


def forecast(so_far: int, now: datetime) -> int | None:
    """The month's calls if the rate so far holds: so far / elapsed fraction (None in the
    month's first minute, when a rate means nothing)."""
    fraction = elapsed_fraction(now)
    if fraction * (month_end(now) - month_start(now)).total_seconds() < 60:
        return None
    return round(so_far / fraction)


def _usage(
    now: datetime, source: str, where: str, by_base: dict[str, int], note: str
) -> MonthUsage:
    so_far = sum(by_base.values())
    return MonthUsage(
        month=month_start(now).strftime("%Y-%m"),
        source=source,
        where=where,
        so_far=so_far,
        by_base=by_base,
        elapsed_fraction=round(elapsed_fraction(now), 4),
        forecast=forecast(so_far, now),
        note=note,
    )


def from_ssm(ssm: Any, prefix: str, now: datetime) -> MonthUsage:
    """The sum of `requests` over the bases' parameters under `prefix` whose `month` is
    this month (a parameter of an earlier month counts 0: the month turned since its base
    was last written). Raises what SSM raises."""
    month = month_start(now).strftime("%Y-%m")
    by_base: dict[str, int] = {}
    skipped = 0
    request: dict[str, Any] = {"Path": prefix.rstrip("/") or "/", "Recursive": False}
    while True:
        page = ssm.get_parameters_by_path(**request)
        for parameter in page.get("Parameters", []):
            base = str(parameter["Name"]).rsplit("/", 1)[-1]
            try:
                kept = json.loads(parameter.get("Value") or "{}")
                requests = int(kept.get("requests", 0)) if kept.get("month") == month else 0
            except (ValueError, TypeError, AttributeError):
                skipped += 1
                continue
            by_base[base] = requests
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    note = f"{len(by_base)} base(s)" + (f"; {skipped} unreadable parameter(s)" if skipped else "")
    if not by_base:
        note = "no base has a parameter there yet (no run has kept one)"
    return _usage(now, "ssm", prefix, by_base, note)


def from_cloudwatch(
    cloudwatch: Any, namespace: str, service: str | None, now: datetime, metric: str
) -> MonthUsage:
    """The Sum of `metric` (per `Base`, of `service` when known) since the 1st of the month.
    Raises what CloudWatch raises."""
    start = month_start(now)
    by_base: dict[str, int] = {}
    request: dict[str, Any] = {"Namespace": namespace, "MetricName": metric}
    while True:
        page = cloudwatch.list_metrics(**request)
        for found in page.get("Metrics", []):
            dimensions = {d["Name"]: d["Value"] for d in found.get("Dimensions", [])}
            if "Base" not in dimensions or (service and dimensions.get("service") != service):
                continue
            points = cloudwatch.get_metric_statistics(
                Namespace=namespace,
                MetricName=metric,
                Dimensions=found["Dimensions"],
                StartTime=start,
                EndTime=now + timedelta(minutes=1),  # exclusive, and kept to the second
                Period=DAY_SECONDS,
                Statistics=["Sum"],
            ).get("Datapoints", [])
            total = sum(int(p.get("Sum", 0)) for p in points)
            base = dimensions["Base"]
            by_base[base] = by_base.get(base, 0) + total
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    of = f"service {service}" if service else "every service"
    note = f"{metric}, Sum since the 1st, {of}"
    if not any(by_base.values()):
        return MonthUsage(
            month=start.strftime("%Y-%m"),
            where=namespace,
            elapsed_fraction=round(elapsed_fraction(now), 4),
            note=f"no {metric} data in CloudWatch this month ({namespace}, {of})",
        )
    return _usage(now, "cloudwatch", namespace, by_base, note)


def now_utc() -> datetime:
    return datetime.now(UTC)
