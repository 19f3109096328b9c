"""A run's summary for a person: a compact table on a terminal (Rich), plain `key value`
lines otherwise, every number rounded, every key explained (`LEGEND`, also in
`poller run --help`). `poller run` and `make run` (devstack) print it the same way."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

#: What each key of the run summary (`poller.summary.RunSummary.to_dict`) means.
LEGEND: Mapping[str, str] = {
    "received": "messages received from the queue",
    "written": "records Airtable confirmed (created + updated)",
    "created": "new rows",
    "updated": "rows that existed (upserted on the merge key)",
    "superseded": "messages folded into a later one of the same key",
    "stale": "not written: their version was not newer than the row's",
    "deleted": "messages deleted from the queue (confirmed by SQS)",
    "dead_lettered": "poison moved to the dead-letter queue, with its reason",
    "released": "messages made visible again, for a later run",
    "requeued": "messages sent back as fresh copies on their last receive",
    "failed": "poison that could not be dead-lettered, or writes given up after retries",
    "delete_failures": "deletes SQS did not confirm (those messages come back)",
    "batches": "write requests settled (up to 10 records each)",
    "requests": "Airtable requests of the drain (writes and lookups)",
    "throttled": "429s from Airtable (each locks the base out for 30 s)",
    "retries": "requests sent again after a transient failure",
    "airtable_requests": "every Airtable request of the run, the checks before it included",
    "elapsed_ms": "how long the run took",
    "stopped_because": "why the run ended: empty, deadline, error, systemic, not_configured",
    "error": "what stopped the run",
    "stopped_routes": "routes that were not written, and why",
    "pacing_rps": "the slowest base's pace at the end (requests/s)",
    "records_per_request": "written / requests (10 fills a request)",
}
#: Counts that are shown on a terminal only when they are not 0.
QUIET_WHEN_ZERO = frozenset(
    {
        "superseded",
        "stale",
        "released",
        "requeued",
        "failed",
        "delete_failures",
        "throttled",
        "retries",
    }
)
#: Why a run stopped, in words.
STOPS = {
    "empty": "the queue is empty",
    "deadline": "stopped at the deadline",
    "error": "stopped on an error",
    "systemic": "held by a systemic failure (no message was at fault)",
    "not_configured": "the token is not configured yet",
}


def value_text(key: str, value: Any, *, terminal: bool = True) -> str:
    """A summary value for a person: rates rounded to 2 decimals; on a terminal, counts
    with separators, the time in seconds and the pace with its unit."""
    if terminal and key == "elapsed_ms" and isinstance(value, int | float):
        return f"{value / 1000:.1f} s"
    if terminal and key == "pacing_rps" and isinstance(value, int | float):
        return f"{value:.2f}".rstrip("0").rstrip(".") + " requests/s"
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}" if terminal else str(value)
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    return str(value)


def legend_text() -> str:
    """Every key and its meaning, one per line (for `--help`)."""
    width = max(len(k) for k in LEGEND)
    return "\n".join(f"  {k:<{width}}  {meaning}" for k, meaning in LEGEND.items())


def plain_lines(summary: Mapping[str, Any]) -> list[str]:
    """`run summary` and one `key  value` line per key, every key, values rounded."""
    shown = [(k, value_text(k, v, terminal=False)) for k, v in summary.items() if k != "error" or v]
    width = max((len(k) for k, _ in shown), default=0)
    return ["run summary", *(f"  {k:<{width}}  {v}" for k, v in shown)]


def headline(summary: Mapping[str, Any]) -> str:
    """`run summary: the queue is empty (12.3 s)`: why the run stopped, and when."""
    stop = str(summary.get("stopped_because", ""))
    elapsed = summary.get("elapsed_ms")
    after = f" ({value_text('elapsed_ms', elapsed)})" if elapsed else ""
    return f"run summary: {STOPS.get(stop, stop)}{after}"


def table(summary: Mapping[str, Any]) -> Any:
    """The summary as a Rich table: key, value, and what the key means (the legend, where
    the reader meets the key). Counts of 0 that usually are 0 are listed in one line."""
    from rich import box
    from rich.table import Table

    grid = Table(
        title=headline(summary),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_header=True,
        header_style="bold",
        expand=False,
        pad_edge=False,
    )
    grid.add_column("key", no_wrap=True, style="cyan")
    grid.add_column("value", justify="right", no_wrap=True)
    grid.add_column("meaning", overflow="fold", style="dim")
    zero = []
    for key, value in summary.items():
        if key in ("stopped_because", "elapsed_ms", "error", "stopped_routes"):
            continue
        if key in QUIET_WHEN_ZERO and not value:
            zero.append(key)
            continue
        grid.add_row(key, value_text(key, value), LEGEND.get(key, ""))
    if zero:
        grid.caption = "0: " + ", ".join(zero)
        grid.caption_justify = "left"
    return grid


def print_summary(
    summary: Mapping[str, Any] | None,
    *,
    error: str | None = None,
    stream: IO[str] | None = None,
    terminal: bool | None = None,
    width: int | None = None,
) -> None:
    """The summary for a person: a table on a terminal (as wide as it, or `width`), else
    plain lines; the error first, in one line."""
    import sys

    from rich.console import Console

    stream = stream or sys.stdout
    terminal = stream.isatty() if terminal is None else terminal
    lines = [] if error is None else [f"the run failed: {error}"]
    routes = (summary or {}).get("stopped_routes") or {}
    if not terminal:
        if lines:
            print("\n".join(lines), file=stream)
        if summary:
            print("\n".join(plain_lines(summary)), file=stream)
        return
    console = Console(
        file=stream, force_terminal=True, highlight=False, soft_wrap=False, width=width
    )
    for line in lines:
        console.print(line, style="bold red", markup=False)
    if summary:
        console.print(table(summary))
        for route, why in routes.items():
            console.print(f"not written: route {route}: {why}", style="yellow", markup=False)


def print_json(
    ok: bool, error: str | None, summary: Mapping[str, Any] | None, stream: IO[str]
) -> None:
    print(json.dumps({"ok": ok, "error": error, "summary": summary}, indent=2), file=stream)
