"""Reading the event log: pages for REST and replay, resets, and the snapshot a reset carries.

Every page is bounded in the rows it examines, not only in the rows it returns: one query looks
at no more than `scan_max` seqs after its cursor (seqs are dense, so that is at most `scan_max`
rows), however rare the requested type or account is in the log. A page that stops early
says where (its cursor), and the caller continues from there: REST clients with
`since=last_seq`, the /ws replay loop by itself. So a filtered read of a huge log costs many
small reads, each a few milliseconds, instead of one that holds a reader for seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from signalosd.errors import ApiError, ErrorCode
from signalosd.models import TradeStatus
from signalosd.models.type_filter import TypeFilter
from signalosd.store import EventRecord, Tx

# (reset or None, the page, the cursor to continue from): one step of a /ws replay.
ReplayStep = tuple[dict[str, Any] | None, list[EventRecord], int]

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
    types: TypeFilter | None,
    scan_max: int,
) -> tuple[list[EventRecord], int]:
    """Events after `since` (at most `limit`, among the next `scan_max` seqs) and the cursor
    to continue from.

    The cursor is the last event returned when the page is full, else where the scan
    stopped: the log's head, or `since + scan_max` when the head is further. So a poller
    filtering on a rare type never rescans what it has already passed, and a cursor that
    did not reach the head says there is more to read."""
    head = tx.head_seq()
    upto = min(head, since + scan_max)
    events = tx.read_events(since, limit, account_ids, types, upto=upto)
    cursor = events[-1].seq if len(events) >= limit else max(upto, since)
    return events, cursor


def page_json(events: list[EventRecord], last_seq: int) -> bytes:
    """The REST reply `{"events": [...], "last_seq": N}`, built from the stored JSON text
    without parsing it (on the reading thread, not the event loop)."""
    body = ",".join(event.wire_json() for event in events)
    return f'{{"events":[{body}],"last_seq":{last_seq}}}'.encode()


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


def replay_step(
    tx: Tx,
    account_ids: Sequence[int] | None,
    since: int,
    limit: int,
    types: TypeFilter | None,
    scan_max: int,
) -> ReplayStep:
    """One step of a /ws replay, in one consistent read: `(reset, [], head)` when the log can
    no longer continue after `since` (also when retention pruned it between two pages, so
    the client gets a reset, never a silent gap), else `(None, page, cursor)`."""
    reason = reset_reason(tx, since)
    if reason is not None:
        head = tx.head_seq()
        return {"last_seq": head, "reason": reason, "snapshot": snapshot(tx, account_ids)}, [], head
    events, cursor = read_page(tx, account_ids, since, limit, types, scan_max)
    return None, events, cursor
