"""The control API's account conditions: capacity, a neighbour client, the billing block,
outages and record caps (see ``conditions`` for how each is enforced).

:class:`AccountControls` is a part of :class:`~airtable_emulator.Emulator`.
"""

from __future__ import annotations

from typing import Any

from .conditions import ALL_BASES, check_cap, check_neighbour_rps, check_outage
from .config import check_rps
from .state import State


class AccountControls:
    """Account conditions; each is also a control endpoint (see ``control``)."""

    _state: State

    def _known(self, base_id: str, *, star: bool = False) -> None:
        if not (star and base_id == ALL_BASES):
            self._state.base_or_key_error(base_id)

    def set_capacity(self, base_id: str, rps: int | None) -> None:
        """Limit ``base_id`` to ``rps`` requests per strict sliding second from now on
        (None: back to the configured ``rate_limit_rps``). Lockouts work as for the
        default limit. KeyError for an unknown base, ValueError for a bad rps."""
        checked = check_rps(rps)
        state = self._state
        with state.lock:
            self._known(base_id)
            state.catch_up(base_id)
            state.limiter.set_rps(base_id, checked)

    def capacity(self, base_id: str) -> int | None:
        """The limit that applies to ``base_id`` now (None: not limited)."""
        with self._state.lock:
            self._known(base_id)
            return self._state.limiter.rps_for(base_id)

    def start_neighbour(self, base_id: str, rps: float) -> None:
        """Start another client of ``base_id`` (the app's own pages) sending ``rps``
        requests per second, evenly spaced from a phase drawn from the seed. Its requests
        count in the base's window and are refused (and start lockouts) like real ones.
        Replaces a running neighbour of that base."""
        checked = check_neighbour_rps(rps)
        state = self._state
        with state.lock:
            self._known(base_id)
            started = state.conditions.start_neighbour(base_id, checked, state.clock())
            if started:
                state.counters.lockout(base_id, started)

    def stop_neighbour(self, base_id: str) -> None:
        """Stop the base's neighbour (its requests until now still count) and reset its
        stats."""
        state = self._state
        with state.lock:
            self._known(base_id)
            started = state.conditions.stop_neighbour(base_id, state.clock())
            if started:
                state.counters.lockout(base_id, started)

    def neighbour_stats(self, base_id: str) -> dict[str, int]:
        """``{"sent", "refused"}``: the neighbour's requests until now, and how many of them
        got a 429 (zeros when the base has no neighbour)."""
        state = self._state
        with state.lock:
            self._known(base_id)
            state.catch_up(base_id)
            return state.conditions.neighbour_stats(base_id)

    def neighbour_next_arrival(self, base_id: str) -> float | None:
        """On the emulator's clock, when the base's neighbour sends its next request (None:
        no neighbour); tests with a fake clock use it to place requests between its own."""
        state = self._state
        with state.lock:
            self._known(base_id)
            state.catch_up(base_id)
            return state.conditions.next_neighbour_arrival(base_id)

    def set_billing_block(self, base_id: str, on: bool, shape: str | None = None) -> None:
        """Block (``on``) or unblock every data request of ``base_id`` (``*``: every base;
        ``*`` off lifts every block) with 429 PUBLIC_API_BILLING_LIMIT_EXCEEDED, while meta
        requests keep answering. ``shape``: "errors" (default) or "error" chooses the
        envelope, for every block. KeyError for an unknown base."""
        if not isinstance(on, bool):
            raise ValueError("on must be true or false")
        state = self._state
        with state.lock:
            self._known(base_id, star=True)
            state.conditions.set_billing_block(base_id, on, shape)

    def set_outage(self, base_id: str, on: bool, status: int = 503, scope: str = "all") -> None:
        """Answer every request of ``base_id`` (``*``: every request, whoami and the bases
        list included) in ``scope`` ("all" or "data") with ``status`` and an HTML page, as a
        proxy does in an outage; ``on=False`` ends it (``*``: ends every outage)."""
        if not isinstance(on, bool):
            raise ValueError("on must be true or false")
        outage = check_outage(status, scope) if on else None
        state = self._state
        with state.lock:
            self._known(base_id, star=True)
            state.conditions.set_outage(base_id, outage)

    def set_record_cap(self, base_id: str, cap: int | None) -> None:
        """Refuse creates (and upserts that would create) that would take ``base_id``'s
        record count (every table) over ``cap`` (None: no cap)."""
        checked = check_cap(cap)
        state = self._state
        with state.lock:
            self._known(base_id)
            state.conditions.set_record_cap(base_id, checked)

    def conditions(self) -> dict[str, Any]:
        """Every account condition in force, JSON-friendly."""
        state = self._state
        with state.lock:
            state.catch_up()
            return state.conditions.snapshot()
