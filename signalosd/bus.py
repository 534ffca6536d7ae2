"""Event fan-out. Publishing never awaits a client.

Each subscriber owns a bounded `Outbox`; `publish` appends the event's once-encoded message to
the outbox of every subscriber that may see it and returns. A subscriber whose outbox is full is
told once (`on_overflow`) and gets nothing more: its connection is closed with 4008 and the
client resumes from the last seq it received.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from .store import EventRecord

CONTROL = 0  # seq used for messages that are not events (pong, error, reset, …)


class Outbox:
    """A bounded FIFO of (seq, text) with an awaitable "not empty"."""

    __slots__ = ("_items", "_maxlen", "_waiter", "overflowed")

    def __init__(self, maxlen: int) -> None:
        self._items: deque[tuple[int, str]] = deque()
        self._maxlen = maxlen
        self._waiter: asyncio.Future[None] | None = None
        self.overflowed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, seq: int, text: str) -> bool:
        """Queue a message; False (and nothing queued) once the outbox is full."""
        if self.overflowed:
            return False
        if len(self._items) >= self._maxlen:
            self.overflowed = True
            self._items.clear()  # the client will resume from its seq: free the memory now
            return False
        self._items.append((seq, text))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    async def take(self) -> list[tuple[int, str]]:
        """Everything queued so far (waits while empty)."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        items = list(self._items)
        self._items.clear()
        return items


def type_matcher(types: Sequence[str] | None) -> Callable[[str], bool] | None:
    """Match event types against a list where `*` is a wildcard (`command_*`)."""
    if not types:
        return None
    # Only `*` is special, as in the store's replay filter (fnmatch would also treat `?` and
    # `[…]` as wildcards, so replay and live would pick different events).
    pattern = re.compile("|".join(re.escape(t).replace(r"\*", ".*") for t in types), re.DOTALL)
    return lambda name: pattern.fullmatch(name) is not None


class Subscription:
    """What one client sees: its accounts (None: all) and event types, and where it goes."""

    __slots__ = ("account_ids", "matches", "on_overflow", "outbox")

    def __init__(
        self,
        account_ids: frozenset[int] | None,
        types: Sequence[str] | None,
        outbox: Outbox,
        on_overflow: Callable[[], None],
    ) -> None:
        self.account_ids = account_ids
        self.matches = type_matcher(types)
        self.outbox = outbox
        self.on_overflow = on_overflow

    def wants(self, event: EventRecord) -> bool:
        if (
            self.account_ids is not None
            and event.account_id is not None
            and event.account_id not in self.account_ids
        ):
            return False
        return self.matches is None or self.matches(event.type)


class EventBus:
    """Fans committed events out to subscriptions and in-process listeners, in seq order."""

    def __init__(self) -> None:
        self.published_seq = 0
        self._subs: set[Subscription] = set()
        self._listeners: list[Callable[[EventRecord], None]] = []
        self.slow_consumer_closes = 0
        self.events_published = 0

    def __len__(self) -> int:
        return len(self._subs)

    def subscribe(self, sub: Subscription) -> None:
        self._subs.add(sub)

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def listen(self, fn: Callable[[EventRecord], None]) -> None:
        """In-process listeners (e.g. command waiters); called synchronously on publish."""
        self._listeners.append(fn)

    def publish(self, events: list[EventRecord]) -> None:
        """Called by the store after COMMIT, in commit order. Never awaits."""
        overflowed: list[Subscription] = []
        for event in events:
            if event.seq <= self.published_seq:
                continue
            self.published_seq = event.seq
            self.events_published += 1
            text = event.message()
            for sub in self._subs:
                if sub.wants(event) and not sub.outbox.put(event.seq, text):
                    overflowed.append(sub)
            for listener in self._listeners:
                listener(event)
        for sub in overflowed:
            if sub in self._subs:
                self._subs.discard(sub)
                self.slow_consumer_closes += 1
                sub.on_overflow()

    def stats(self) -> dict[str, Any]:
        return {
            "subscribers": len(self._subs),
            "published_seq": self.published_seq,
            "slow_consumer_closes": self.slow_consumer_closes,
        }
