"""Event fan-out. Publishing never awaits a client.

Each subscriber owns a bounded `ClientQueue`; `publish` appends the event's once-encoded message
to the queue of every subscriber that may see it and returns. The bound is checked per published
batch: a subscriber that still has `maxlen` messages waiting when the next commit is published
has fallen behind, is told once (`on_overflow`) and gets nothing more; its connection is closed
with 4008 and the client resumes from the last seq it received. A single large commit (a bulk
ingest) is therefore never mistaken for a slow reader, and a queue holds at most
`maxlen - 1` plus one commit's events.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from signalosd.models.type_filter import TypeFilter
from signalosd.store import EventRecord

log = logging.getLogger("signalosd.live.bus")

CONTROL = 0  # seq used for messages that are not events (pong, error, reset, …)


class ClientQueue:
    """One WebSocket client's frames waiting for its writer: a bounded FIFO of (seq, text) with
    an awaitable "not empty". (Not the command outbox: that is the durable queue in outbox/.)"""

    __slots__ = ("_items", "_maxlen", "_waiter", "overflowed")

    def __init__(self, maxlen: int) -> None:
        self._items: deque[tuple[int, str]] = deque()
        self._maxlen = maxlen
        self._waiter: asyncio.Future[None] | None = None
        self.overflowed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        return self.overflowed or len(self._items) >= self._maxlen

    def overflow(self) -> None:
        """Give up on this client: it resumes from its seq, so free the memory now."""
        self.overflowed = True
        self._items.clear()

    def put(self, seq: int, text: str, *, first: bool = False) -> None:
        """Queue a message (the caller checked `full` first; nothing is queued after overflow).
        `first`: ahead of everything still waiting (an emergency stop to the agent)."""
        if self.overflowed:
            return
        if first:
            self._items.appendleft((seq, text))
        else:
            self._items.append((seq, text))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

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


class Subscription:
    """What one client sees: its accounts (None: all) and event types (None: all; a
    `TypeFilter`, linear-time, the same one its replay reads with), and where it goes."""

    __slots__ = ("account_ids", "matches", "on_overflow", "queue")

    def __init__(
        self,
        account_ids: frozenset[int] | None,
        matches: TypeFilter | None,
        queue: ClientQueue,
        on_overflow: Callable[[], None],
    ) -> None:
        self.account_ids = account_ids
        self.matches = matches
        self.queue = queue
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
        behind = [sub for sub in self._subs if sub.queue.full]
        for sub in behind:
            self.drop_slow(sub)
        for event in events:
            if event.seq <= self.published_seq:
                continue
            self.published_seq = event.seq
            self.events_published += 1
            # Listeners first: an emergency stop reaches the agent's connection before the
            # event is fanned out to every dashboard.
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:  # one broken listener must not stop the fan-out
                    log.exception("event=listener_failed listener=%r seq=%d", listener, event.seq)
            text = event.message()
            for sub in self._subs:
                if sub.wants(event):
                    sub.queue.put(event.seq, text)

    def drop_slow(self, sub: Subscription) -> None:
        """Unsubscribe a client that fell behind and tell its connection (once)."""
        self._subs.discard(sub)
        if not sub.queue.overflowed:
            sub.queue.overflow()
            self.slow_consumer_closes += 1
            sub.on_overflow()
