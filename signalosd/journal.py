"""Reading the event log: pages for REST and replay, resets, and the snapshot a reset carries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import ApiError, ErrorCode
from .models import TradeStatus
from .store import EventRecord, Tx

LIVE_STATUSES = (TradeStatus.PENDING.value, TradeStatus.OPEN.value, TradeStatus.CLOSING.value)


def reset_reason(tx: Tx, since: int) -> str | None:
    """Why a cursor cannot be resumed from, or None when it can.

    `pruned`: the log no longer holds since+1. `future`: the cursor is past the log's head (the
    client saw another database, e.g. before a restore)."""
    if since > tx.head_seq():
        return "future"
    if since < tx.pruned_through():
        return "pruned"
    return None


def read_page(
    tx: Tx,
    account_ids: Sequence[int] | None,
    since: int,
    limit: int,
    types: Sequence[str] | None,
) -> tuple[list[EventRecord], int]:
    """Events after `since` and the cursor to continue from.

    The cursor is the last event returned when the page is full, else the log's head, so a
    poller filtering on a rare type does not rescan what it has already passed."""
    head = tx.head_seq()
    events = tx.read_events(since, limit, account_ids, types, upto=head)
    cursor = events[-1].seq if len(events) >= limit else max(head, since)
    return events, cursor


def reset_error(tx: Tx, since: int, reason: str) -> ApiError:
    head = tx.head_seq()
    return ApiError(
        ErrorCode.EVENTS_RESET,
        (
            f"cannot resume after seq {since}: "
            + (
                f"events up to seq {tx.pruned_through()} were pruned by retention"
                if reason == "pruned"
                else f"the log ends at seq {head}"
            )
            + f"; reload the state (GET /api/trading/state, /api/trades) and resume from {head}"
        ),
        {"reason": reason, "since": since, "last_seq": head, "pruned_through": tx.pruned_through()},
    )


def snapshot(tx: Tx, account_ids: Sequence[int] | None) -> dict[str, Any]:
    """The state a client needs after a reset: mode and live trades of each visible account."""
    ids = list(account_ids) if account_ids is not None else [a["id"] for a in tx.list_accounts()]
    return {
        "accounts": [
            {
                "account": tx.get_state(account_id)["account"],
                "trading": tx.get_state(account_id),
                "trades": tx.list_trades(account_id, LIVE_STATUSES, None, 10_000),
            }
            for account_id in ids
        ]
    }
