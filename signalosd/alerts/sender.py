"""One webhook's delivery worker: the event log after its durable cursor, in seq order, to one
receiver, each alert retried until accepted or given up.

The event log is the alert outbox (docs/alerts.md): an alert is committed with its event, and
`delivered_seq` says how far this webhook has got. The worker reads matching events after it
on the store's scan lane (bounded pages, never the writer), POSTs each under
`webhook_timeout_s`, retries with backoff (backoff.py) for `webhook_retry_for_s` from the
alert's first failed attempt (kept in the row, so a restart does not start the window over),
then appends `webhook_failed` and goes on. Each accepted or given-up alert moves the cursor in
a short write transaction of its own; no transaction is open while a request is in flight, so
a slow receiver holds nothing anyone else waits for. An alert in flight when the daemon stops
is sent again after the restart: at least once, in order, de-duplicated by `seq`.

A webhook never receives a `webhook_failed` about itself (a dead receiver would be sent its
own failures forever), nor one about a failed `webhook_failed` (two dead receivers would
otherwise report each other's failures back and forth).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from signalosd.alerts import attempt, formats, urls
from signalosd.alerts.backoff import Backoff
from signalosd.clock import Clock, iso, monotonic
from signalosd.config import Settings
from signalosd.models import EventType, system_actor, type_filter
from signalosd.models.type_filter import TypeFilter
from signalosd.models.webhooks import WebhookFormat
from signalosd.store import Database, EventRecord, Tx

log = logging.getLogger("signalosd.alerts")
ALERTS_ACTOR = system_actor("alerts")
PAGE = 100  # events per read: a page is delivered one by one, so it need not be large
# How long a cursor moved past events the webhook does not want may wait to be written: such
# moves cost a write each, and losing one only means reading those events again.
SKIP_FLUSH_S = 1.0


@dataclass(slots=True)
class Hook:
    """What a worker knows of its webhook (from its row), and where it has got to."""

    id: int
    url: str
    shown: str  # the URL redacted, for log lines and errors
    format: WebhookFormat
    secret: str | None
    types: TypeFilter | None
    account_ids: list[int] | None
    cursor: int
    failing_seq: int | None
    failing_since: str | None
    failures: int

    @classmethod
    def of(cls, row: dict[str, Any]) -> Hook:
        return cls(
            id=int(row["id"]),
            url=row["url"],
            shown=urls.redact(row["url"]),
            format=WebhookFormat(row["format"]),
            secret=row["secret"] or None,
            types=type_filter.parse(row["events"]),
            account_ids=None if row["account_id"] is None else [int(row["account_id"])],
            cursor=int(row["delivered_seq"]),
            failing_seq=row["failing_seq"],
            failing_since=row["failing_since"],
            failures=int(row["failures"]),
        )

    def wants(self, event: EventRecord) -> bool:
        """Whether `event` may be an alert for this webhook (by account and type)."""
        ids = self.account_ids
        if ids is not None and event.account_id is not None and event.account_id not in ids:
            return False
        return self.types is None or self.types(event.type)

    def about_itself(self, event: EventRecord) -> bool:
        """A `webhook_failed` this webhook must not be sent (see the module's docstring)."""
        if event.type != EventType.WEBHOOK_FAILED:
            return False
        data = json.loads(event.data_json)
        return bool(data.get("webhook_id") == self.id or data.get("type") == event.type)


class Worker:
    """Delivers one webhook's alerts; `run` until cancelled. `notice` is the bus listener's
    part: it never blocks (it sets a flag or moves an in-memory cursor)."""

    def __init__(
        self,
        hook: Hook,
        db: Database,
        session: aiohttp.ClientSession,
        clock: Clock,
        settings: Settings,
        head: Callable[[], int],
        backoff: Backoff,
    ) -> None:
        self.hook = hook
        self._db = db
        self._session = session
        self._clock = clock
        self._settings = settings
        self._head = head
        self._backoff = backoff
        self._wake = asyncio.Event()
        self._idle = False
        self._persisted = hook.cursor
        self._owner = f"system:webhook:{hook.id}"

    def notice(self, event: EventRecord) -> None:
        """A committed event was published. When the worker is idle and caught up, an event
        it does not want only moves its cursor, without a read."""
        if self._idle and self.hook.cursor == event.seq - 1 and not self.hook.wants(event):
            self.hook.cursor = event.seq
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self._catch_up()
                await self._wait()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A store failure (disk full…): say so and try again, never die silently.
                log.exception("event=webhook_worker_failed webhook_id=%d", self.hook.id)
                await asyncio.sleep(self._backoff.cap_s)

    async def _wait(self) -> None:
        """Until there is more to read; a cursor moved past unwanted events is written once
        nothing has been published for SKIP_FLUSH_S (or at the next delivery)."""
        self._idle = True
        try:
            while self.hook.cursor >= self._head():
                self._wake.clear()
                if self.hook.cursor <= self._persisted:
                    await self._wake.wait()
                    continue
                try:
                    async with asyncio.timeout(SKIP_FLUSH_S):
                        await self._wake.wait()
                except TimeoutError:
                    await self._persist(delivered=False)
        finally:
            self._idle = False

    async def _catch_up(self) -> None:
        """Deliver every matching event up to what the bus has published, page by page."""
        started = monotonic()
        hook = self.hook
        while (head := self._head()) > hook.cursor:
            after = hook.cursor
            upto = min(head, after + self._settings.scan_max_rows)
            pruned, page = await self._db.scan(
                functools.partial(_page, after=after, upto=upto, hook=hook), owner=self._owner
            )
            if pruned > after:
                await self._lost(after, pruned)
                continue
            for event in page:
                if not hook.about_itself(event):
                    await self._deliver(event)
                hook.cursor = max(hook.cursor, event.seq)
            hook.cursor = max(hook.cursor, page[-1].seq if len(page) == PAGE else upto)
            if monotonic() - started >= SKIP_FLUSH_S:
                await self._persist(delivered=False)
                started = monotonic()

    async def _persist(self, *, delivered: bool, seq: int | None = None) -> None:
        hook, seq = self.hook, self.hook.cursor if seq is None else seq
        await self._db.write(lambda tx: tx.webhook_advanced(hook.id, seq, delivered))
        self._persisted = max(self._persisted, seq)

    async def _deliver(self, event: EventRecord) -> None:
        """Attempt `event` until the receiver accepts it or its retry window is over."""
        hook = self.hook
        request = formats.build(hook.format, event, hook.url, hook.secret)
        if hook.failing_seq == event.seq and hook.failing_since is not None:
            since = datetime.fromisoformat(hook.failing_since)  # the window survives restarts
        else:
            since, hook.failures = self._clock.now(), 0
        timeout_s = self._settings.webhook_timeout_s
        while True:
            error = await attempt.post(self._session, hook.url, hook.shown, request, timeout_s)
            if error is None:
                await self._persist(delivered=True, seq=event.seq)
                hook.failing_seq, hook.failing_since, hook.failures = None, None, 0
                return
            hook.failures += 1
            log.warning(
                "event=webhook_delivery_failed webhook_id=%d seq=%d type=%s attempt=%d "
                "error=%s url=%s",
                hook.id,
                event.seq,
                event.type,
                hook.failures,
                error,
                hook.shown,
            )
            failed_for = (self._clock.now() - since).total_seconds()
            if failed_for >= self._settings.webhook_retry_for_s:
                await self._give_up(event, hook.failures, error)
                return
            await self._failed_attempt(event.seq, error, iso(since))
            await asyncio.sleep(self._backoff.delay(hook.failures))

    async def _failed_attempt(self, seq: int, error: str, since: str) -> None:
        hook = self.hook
        failures = hook.failures
        await self._db.write(
            lambda tx: tx.webhook_attempt_failed(hook.id, seq, error, since, failures)
        )
        hook.failing_seq, hook.failing_since = seq, since

    async def _give_up(self, event: EventRecord, attempts: int, error: str) -> None:
        """`webhook_failed` and the cursor past the alert, in one transaction."""
        hook = self.hook
        data = {
            "webhook_id": hook.id,
            "seq": event.seq,
            "type": event.type,
            "attempts": attempts,
            "error": error,
        }
        await self._db.write(lambda tx: _record_failure(tx, hook.id, event.account_id, data))
        log.warning(
            "event=webhook_gave_up webhook_id=%d seq=%d type=%s attempts=%d url=%s",
            hook.id,
            event.seq,
            event.type,
            attempts,
            hook.shown,
        )
        self._persisted = max(self._persisted, event.seq)
        hook.failing_seq, hook.failing_since, hook.failures = None, None, 0

    async def _lost(self, after: int, pruned: int) -> None:
        """Events after the cursor are gone from the log (a restore of an older backup, or a
        prune that could not wait): say so once as `webhook_failed`, go on after them."""
        hook = self.hook
        error = (
            f"events after seq {after} through {pruned} were pruned from the log before "
            "this webhook was sent them"
        )
        data = {
            "webhook_id": hook.id,
            "seq": pruned,
            "type": EventType.EVENTS_PRUNED.value,
            "attempts": 0,
            "error": error,
        }
        await self._db.write(lambda tx: _record_failure(tx, hook.id, None, data, pruned))
        log.warning(
            "event=webhook_events_lost webhook_id=%d after=%d through=%d", hook.id, after, pruned
        )
        hook.cursor = self._persisted = max(hook.cursor, pruned)


def _page(tx: Tx, *, after: int, upto: int, hook: Hook) -> tuple[int, list[EventRecord]]:
    """What a worker reads: the log's pruned prefix and its next page of matching events."""
    events = tx.read_events(after, PAGE, hook.account_ids, hook.types, upto)
    return tx.pruned_through(), events


def _record_failure(
    tx: Tx, webhook_id: int, account_id: int | None, data: dict[str, Any], seq: int | None = None
) -> None:
    if tx.webhook(webhook_id) is None:
        return  # deleted meanwhile: nothing to report about
    tx.append_event(account_id, EventType.WEBHOOK_FAILED, data, ALERTS_ACTOR)
    tx.webhook_advanced(webhook_id, int(data["seq"]) if seq is None else seq, True)
