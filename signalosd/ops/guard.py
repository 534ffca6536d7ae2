"""ConnectionGuard: a cap on the connections that have not shown a valid token yet.

Every open connection holds a file descriptor and some memory, and a connection without a
token costs its client nothing: without a cap, a few thousand idle sockets exhaust the
daemon's file limit and the operator's emergency stop cannot even be accepted. A connection
counts here from the moment it is accepted until an HTTP request on it passes authorisation
(`middleware.authorize`) or its WebSocket authenticates (`ws/session.py`).

When a new connection would exceed the cap, the OLDEST unauthenticated one is closed, never
the new one: a fresh connection (the operator's `signalos stop`) always gets in, and an
attacker holding idle sockets only pushes out its own older ones. Closing is an abort, so the
descriptor is freed at once even when the client reads nothing. Authenticated connections are
never counted or closed here (their idle time is bounded by the header deadline instead).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

log = logging.getLogger("signalosd")
# At most one log line about closed connections per this many seconds: under a flood, one
# line per closed socket would be a second attack, on the journal.
LOG_INTERVAL_S = 10.0


class ConnectionGuard:
    """The unauthenticated connections, oldest first, and the cap on their number."""

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError("the cap must be at least 1")
        self.cap = cap
        self.closed_total = 0
        # dicts keep insertion order: the first key is the oldest connection.
        self._pending: dict[object, asyncio.Transport] = {}
        self._unlogged = 0
        self._logged_at = -math.inf

    @property
    def unauthenticated(self) -> int:
        """How many connections are open without having shown a valid token."""
        return len(self._pending)

    def arrived(self, conn: object, transport: asyncio.Transport) -> None:
        """A connection was accepted: count it, and close the oldest ones beyond the cap."""
        self._pending[conn] = transport
        while len(self._pending) > self.cap:
            oldest = next(iter(self._pending))
            self._pending.pop(oldest).abort()
            self._closed_one()

    def admit(self, conn: object) -> None:
        """The connection showed a valid token: it no longer counts (unknown ones are fine:
        connections served by a site without a guard, e.g. in tests)."""
        self._pending.pop(conn, None)

    def left(self, conn: object) -> None:
        """The connection is gone (closed by either side)."""
        self._pending.pop(conn, None)

    def _closed_one(self) -> None:
        self.closed_total += 1
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at < LOG_INTERVAL_S:
            return
        log.warning(
            "event=unauthenticated_connections_closed count=%d total=%d cap=%d hint=%r",
            self._unlogged,
            self.closed_total,
            self.cap,
            "more clients than max_unauthenticated_connections connected without showing a "
            "token; the oldest were closed. If they are your own, raise the setting",
        )
        self._unlogged = 0
        self._logged_at = now
