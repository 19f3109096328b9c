"""Figures read from the emulator's samples, its write log and the two traces: a base's
request rate over time, when it changed, records/s after a moment, and the time between
each request's pacer stamp and its arrival at the emulator."""

from __future__ import annotations

import itertools
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from .world import Sample, rate_at

#: Airtable's requests per second per base: the window the stamp/arrival figures check.
AIRTABLE_RPS = 5
#: A request rate at or above each threshold means the pace reached the next whole
#: request/s (the poller paces at limit / 1.02: 1.96, 2.94, 3.92, 4.90).
STEP_THRESHOLDS = (2.5, 3.5, 4.5)


def rate_timeline(
    samples: list[Sample], base: str, origin: float, end: float, step: float = 1.0
) -> list[list[float]]:
    """[seconds from `origin`, requests/s the base admitted over the trailing window]."""
    out = []
    t = origin
    while t <= end:
        out.append([round(t - origin, 1), round(rate_at(samples, base, t), 2)])
        t += step
    return out


def first_at_or_above(
    samples: list[Sample], base: str, threshold: float, since: float, step: float = 0.5
) -> float | None:
    """The first time after `since` at which the trailing rate reached `threshold`."""
    if not samples:
        return None
    t = since
    while t <= samples[-1].t:
        if rate_at(samples, base, t) >= threshold:
            return t
        t += step
    return None


def steps(samples: list[Sample], base: str, since: float) -> dict[str, float | None]:
    """When the trailing rate first reached each of `STEP_THRESHOLDS` after `since`."""
    out: dict[str, float | None] = {}
    t = since
    for threshold in STEP_THRESHOLDS:
        found = first_at_or_above(samples, base, threshold, t)
        out[f">= {threshold:g}"] = found
        if found is not None:
            t = found
    return out


def records_after(
    log: list[dict[str, Any]], since: float, *, table: str | None = None
) -> dict[str, Any]:
    """Records confirmed from `since` to the last write (of `table`, or of all), ÷ that span."""
    writes = sorted(
        (e["time"], len(e["record_ids"]))
        for e in log
        if e["kind"] in ("created", "updated")
        and e["time"] >= since
        and (table is None or e["table"] == table)
    )
    if len(writes) < 2:
        return {"since": since, "records": sum(n for _, n in writes), "records_per_s": None}
    span = writes[-1][0] - since
    records = sum(n for _, n in writes)
    return {
        "records": records,
        "span_s": round(span, 1),
        "records_per_s": round(records / span, 2) if span > 0 else None,
    }


#: The poller's pacing guard: it spaces requests 1.02 / limit s apart.
PACING_GUARD = 0.02


def limits_after(
    sends: Path | None, base: str, lockouts: list[float], lockout_s: float, end: float
) -> list[int | None]:
    """The pace (whole requests/s) the poller kept after each lockout, read from its pacer
    stamps: with a backlog its requests leave (1 + guard) / limit s apart, so the median
    spacing of its stamps from the lockout's end to the next lockout (at most 10 s) gives
    the limit. None where too few requests left to tell."""
    stamps = sorted(float(line["t"]) for line in _lines(sends) if line.get("base") == base)
    out: list[int | None] = []
    for n, began in enumerate(lockouts):
        since = began + lockout_s
        until = min(since + 10.0, end, lockouts[n + 1] if n + 1 < len(lockouts) else end)
        inside = [t for t in stamps if since <= t <= until]
        gaps = [b - a for a, b in itertools.pairwise(inside)]
        if len(gaps) < 3:
            out.append(None)
            continue
        out.append(round((1 + PACING_GUARD) / statistics.median(gaps)))
    return out


def _lines(path: Path | None) -> list[dict[str, Any]]:
    if path is None or not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


def stamp_to_arrival(sends: Path | None, arrivals: Path | None) -> dict[str, Any]:
    """Per base: each pacer stamp paired, in order, with the first arrival at the emulator
    at or after it (`bench.poller --trace-sends`, `bench.emulator --trace-arrivals`), and

    * `delay_ms`: from the stamp to the arrival at the emulator's limiter (min, median,
      p95, p99, max), split into `client_ms` (stamp to the request written to the socket:
      pyairtable, requests and urllib3 in the poller's process) and `after_write_ms` (the
      socket write to the emulator's clock reading it: loopback, and the emulator getting
      to it; negative when the emulator reads a request's first line before the client
      has written its body);
    * `by_caller`: the delay's spread for each function that asked the pacer;
    * `tightest_six_s`: the shortest span of 6 consecutive requests (Airtable refuses the
      6th inside 1 s), by stamps and by arrivals, and how many such spans by arrivals were
      under 1 s;
    * `refusals`: for each 429 that followed an admitted request (a lockout's first), the
      span of it and the 5 requests before it, by stamps and by arrivals, with each one's
      delay and caller.
    """
    sent = _lines(sends)
    came = _lines(arrivals)
    if not sent or not came:
        return {}
    # the emulator's trace may hold an earlier run's requests: only those from 1 s before
    # this run's first stamp are this run's
    since = min(float(line["t"]) for line in sent) - 1.0
    mine: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in sent:
        mine[line["base"]].append(line)
    theirs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    operated: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in came:
        if "operated" in line:
            if float(line["operated"][0]) >= since:
                operated[line["base"]].append(line)
        elif float(line["arrived"]) >= since:
            theirs[line["base"]].append(line)
    out: dict[str, Any] = {}
    for base in sorted(mine):
        stamps = sorted(mine[base], key=lambda line: float(line["t"]))
        arrived = sorted(theirs.get(base, []), key=lambda line: float(line["arrived"]))
        pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        j = 0
        for stamp in stamps:
            left = float(stamp["t"])
            while j < len(arrived) and float(arrived[j]["arrived"]) < left - 0.001:
                j += 1
            if j < len(arrived) and float(arrived[j]["arrived"]) - left < 5.0:
                pairs.append((stamp, arrived[j]))
                j += 1
        if not pairs:
            continue
        pairs.sort(key=lambda pair: float(pair[0]["t"]))

        def ms(pair: tuple[dict[str, Any], dict[str, Any]], a: str, b: str) -> float:
            first, second = pair
            start = float(first[a]) if a in first else float(second[a])
            end = float(second[b]) if b in second else float(first[b])
            return 1000 * (end - start)

        written = [p for p in pairs if "wrote" in p[0]]
        callers = sorted({str(p[0].get("by", "")) for p in pairs})
        out[base] = {
            "requests_stamped": len(stamps),
            "requests_arrived": len(arrived),
            "paired": len(pairs),
            "delay_ms": _spread(sorted(ms(p, "t", "arrived") for p in pairs)),
            "client_ms": _spread(sorted(ms(p, "t", "wrote") for p in written)) if written else {},
            "after_write_ms": (
                _spread(sorted(ms(p, "wrote", "arrived") for p in written)) if written else {}
            ),
            "by_caller": {
                c: {
                    "requests": sum(1 for p in pairs if p[0].get("by", "") == c),
                    "delay_ms": _spread(
                        sorted(ms(p, "t", "arrived") for p in pairs if p[0].get("by", "") == c)
                    ),
                }
                for c in callers
            },
            "tightest_six_s": _tightest(pairs),
            "refusals": _refusals(pairs),
            "emulator_busy": _busy(operated.get(base, [])),
        }
    return out


def _busy(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Per kind of request: how many, and the seconds the emulator spent reading or writing
    the table for them (in all, and the longest), over the span from the first to the last."""
    if not lines:
        return {}
    spans = [
        (line["kind"], float(line["operated"][0]), float(line["operated"][1])) for line in lines
    ]
    first = min(s for _, s, _ in spans)
    last = max(e for _, _, e in spans)
    kinds: dict[str, Any] = {}
    for kind in sorted({k for k, _, _ in spans}):
        took = [e - s for k, s, e in spans if k == kind]
        kinds[kind] = {
            "requests": len(took),
            "seconds": round(sum(took), 2),
            "longest_ms": round(1000 * max(took), 1),
        }
    return {"span_s": round(last - first, 1), "by_kind": kinds}


def _spread(values: list[float]) -> dict[str, float]:
    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 2)

    return {
        "min": round(values[0], 2),
        "median": round(statistics.median(values), 2),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": round(values[-1], 2),
    }


def _tightest(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    n = AIRTABLE_RPS
    if len(pairs) <= n:
        return {}
    stamps = sorted(float(s["t"]) for s, _ in pairs)
    arrivals = sorted(float(a["arrived"]) for _, a in pairs)
    by_stamp = min(stamps[i + n] - stamps[i] for i in range(len(stamps) - n))
    by_arrival = [arrivals[i + n] - arrivals[i] for i in range(len(arrivals) - n)]
    return {
        "by_stamps": round(by_stamp, 4),
        "by_arrivals": round(min(by_arrival), 4),
        "arrival_spans_under_1s": sum(1 for span in by_arrival if span < 1.0),
    }


def _refusals(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    n = AIRTABLE_RPS
    by_arrival = sorted(pairs, key=lambda pair: float(pair[1]["arrived"]))
    out = []
    for i, (_, came) in enumerate(by_arrival):
        if came["admitted"] or i < n or not by_arrival[i - 1][1]["admitted"]:
            continue
        six = by_arrival[i - n : i + 1]
        stamps = [float(s["t"]) for s, _ in six]
        arrivals = [float(a["arrived"]) for _, a in six]
        out.append(
            {
                "at": round(arrivals[-1], 3),
                "six_by_stamps_s": round(max(stamps) - min(stamps), 4),
                "six_by_arrivals_s": round(arrivals[-1] - arrivals[0], 4),
                "requests": [
                    {
                        "by": s.get("by", ""),
                        "kind": a.get("kind", ""),
                        "delay_ms": round(1000 * (float(a["arrived"]) - float(s["t"])), 1),
                        "client_ms": (
                            round(1000 * (float(s["wrote"]) - float(s["t"])), 1)
                            if "wrote" in s
                            else None
                        ),
                    }
                    for s, a in six
                ],
            }
        )
    return out[:10]
