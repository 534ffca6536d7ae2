"""A webhook as GET /api/webhooks shows it (models/webhooks.py `Webhook`): the URL redacted,
`has_secret` instead of the secret, and how many matching events wait after its cursor."""

from __future__ import annotations

from typing import Any

from signalosd.alerts import urls
from signalosd.models import type_filter
from signalosd.store import Tx


def pending(tx: Tx, row: dict[str, Any], window: int) -> int:
    """Matching events after the cursor, counted over at most `window` seqs (a read bounded
    like every long read, however far behind the webhook is)."""
    after = int(row["delivered_seq"])
    upto = min(tx.head_seq(), after + window)
    if upto <= after:
        return 0
    accounts = None if row["account_id"] is None else [int(row["account_id"])]
    return tx.count_events(after, upto, accounts, type_filter.parse(row["events"]))


def view(row: dict[str, Any], waiting: int) -> dict[str, Any]:
    return {
        "id": row["id"],
        "url": urls.redact(row["url"]),
        "events": row["events"],
        "format": row["format"],
        "account": row["account"],
        "has_secret": bool(row["secret"]),
        "created_at": row["created_at"],
        "delivered_seq": row["delivered_seq"],
        "pending": waiting,
        "last_error": row["last_error"],
        "last_attempt_at": row["last_attempt_at"],
        "failures": row["failures"],
    }
