"""Webhook queries of the store interface (Tx): the outgoing webhooks and each one's durable
cursor into the event log (docs/alerts.md, "the alert outbox").

The event log is the alerts' outbox: an alert is committed when its event is. What a webhook
adds is where its delivery has got to (`delivered_seq`: every matching event up to it has been
delivered or given up) and the state of the attempt in progress, so that a restart resumes
exactly there. A row leaves the store as a dict with the columns below; `events` as a list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from signalosd.models.type_filter import TypeFilter


class WebhookQueries(Protocol):
    def insert_webhook(
        self,
        url: str,
        events: list[str],
        format_: str,
        account_id: int | None,
        secret: str,
        delivered_seq: int,
    ) -> int:
        """Store a new webhook whose cursor starts at `delivered_seq`; its id (never reused)."""
        ...

    def webhook(self, webhook_id: int) -> dict[str, Any] | None:
        """One webhook with its secret and cursor (None: no such webhook)."""
        ...

    def webhooks(self) -> list[dict[str, Any]]:
        """Every webhook with its secret and cursor, oldest first."""
        ...

    def count_webhooks(self) -> int: ...

    def delete_webhook(self, webhook_id: int) -> bool:
        """Remove a webhook; whether there was one."""
        ...

    def webhook_advanced(self, webhook_id: int, seq: int, delivered: bool) -> None:
        """Move the cursor up to `seq` (never down). `delivered`: an alert was just accepted
        by the receiver (or given up), so the attempt state starts over."""
        ...

    def webhook_attempt_failed(
        self, webhook_id: int, seq: int, error: str, failing_since: str, failures: int
    ) -> None:
        """Record a failed attempt at the alert `seq`: the error, when the alert's first
        attempt failed (its retry window survives a restart) and the attempts so far."""
        ...

    def webhook_floor(self) -> int | None:
        """The lowest cursor of any webhook (None: no webhook): retention keeps the events
        after it, so no alert is pruned before its delivery."""
        ...

    def count_events(
        self, after: int, upto: int, account_ids: Sequence[int] | None, types: TypeFilter | None
    ) -> int:
        """How many events in (after, upto] `account_ids` (None: all) may see that match
        `types` (None: all): a webhook's pending alerts."""
        ...
