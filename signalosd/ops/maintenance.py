"""Scheduled upkeep: retention of events, idempotent replies, finished commands, the trade
history and the account history (the equity chart's samples), so the database stays bounded.

Pruning never holds the writer for long: old rows are found on the read side and deleted in
chunks of at most `maintenance_chunk_rows`, each its own short transaction
(store/sqlite/retention.py).

The log keeps at least `event_retention_days`, and every event a webhook has yet to be sent
(its cursor, docs/alerts.md); a client resuming from a pruned seq is sent an
explicit reset, never a silent gap. Finished commands go after `command_retention_days`;
closed/failed trades and their signals (and skipped signals) after `trade_retention_days`. A
live trade (pending, open, closing), an unfinished command, a trade a remaining command names
and a signal a remaining trade names are never deleted, so every reference still resolves.
Account history rows go after `account_history_retention_days` (nothing refers to them).
Commands past their deadline are the outbox's to expire (outbox/deadlines.py), not retention's.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta

from signalosd.auth.accounts import SYSTEM_ACTOR
from signalosd.clock import iso
from signalosd.config import Settings
from signalosd.models import EventType
from signalosd.ops import logfmt
from signalosd.store import Database, Tx

log = logging.getLogger("signalosd.ops.maintenance")
MAINTENANCE_OWNER = "system:maintenance"  # its reads take turns on the scan lane like a token's


async def run_once(db: Database, settings: Settings) -> dict[str, int]:
    """One pass of retention, in bounded steps: old rows are found by reads on the scan lane
    and deleted in chunks of at most `maintenance_chunk_rows`, each chunk its own short write
    transaction. An emergency stop queued meanwhile waits for one chunk, not for the pass."""
    now, chunk = db.clock.now(), settings.maintenance_chunk_rows
    cutoff = iso(now - timedelta(days=settings.event_retention_days))
    events_pruned = await _prune_events(db, cutoff, chunk)
    replies_before = iso(now - timedelta(seconds=settings.idempotency_ttl_s))
    replies = await _prune_older(
        db, lambda tx, b, n: tx.prune_idempotency(b, n), replies_before, chunk
    )
    # Commands first (a trade is kept while a command names it), then trades, then signals
    # (trades.signal_id references signals).
    ago = iso(now - timedelta(days=settings.command_retention_days))
    table = functools.partial(_prune_table, db, chunk=chunk, window=settings.scan_max_rows)
    commands_pruned = await table("commands", ago, lambda tx, keys, b: tx.prune_commands(keys, b))
    history = iso(now - timedelta(days=settings.trade_retention_days))
    trades_pruned = await table("trades", history, lambda tx, keys, b: tx.prune_trades(keys, b))
    signals_pruned = await table("signals", history, lambda tx, keys, b: tx.prune_signals(keys, b))
    samples_before = iso(now - timedelta(days=settings.account_history_retention_days))
    samples = await _prune_older(
        db, lambda tx, b, n: tx.prune_account_history(b, n), samples_before, chunk
    )
    done = {
        "events_pruned": events_pruned,
        "idempotency_pruned": replies,
        "commands_pruned": commands_pruned,
        "trades_pruned": trades_pruned,
        "signals_pruned": signals_pruned,
        "account_history_pruned": samples,
    }
    log.info("event=maintenance %s", logfmt.pairs(done))
    return done


async def _prune_older(
    db: Database, prune: Callable[[Tx, str, int], int], before: str, chunk: int
) -> int:
    """Rows found by their own time (`prune` deletes at most `chunk` older than `before`),
    one short write transaction per chunk until a chunk comes back short."""
    total = 0
    while True:
        n = await db.write(lambda tx: prune(tx, before, chunk))
        total += n
        if n < chunk:
            return total


async def _prune_events(db: Database, cutoff: str, chunk: int) -> int:
    """Delete every event up to the newest one older than `cutoff`, oldest first, a chunk per
    transaction; the last chunk's transaction also appends the `events_pruned` event."""
    oldest, floor = await db.scan(
        lambda tx: (tx.newest_event_before(cutoff), tx.webhook_floor()), owner=MAINTENANCE_OWNER
    )
    # The event log is the webhooks' outbox (docs/alerts.md): an event a webhook's cursor has
    # not passed yet stays, however old, until it is delivered or given up.
    highest = oldest if floor is None else min(oldest, floor)
    if highest < oldest:
        log.info("event=retention_held_by_webhook through_seq=%d webhook_floor=%d", oldest, highest)
    total = 0

    def step(tx: Tx) -> int:
        nonlocal total
        n = tx.prune_events_through(highest, chunk)
        total += n
        if total and (n == 0 or tx.pruned_through() >= highest):
            tx.append_event(
                None,
                EventType.EVENTS_PRUNED,
                {"count": total, "through_seq": tx.pruned_through(), "older_than": cutoff},
                SYSTEM_ACTOR,
            )
            return 0  # done
        return n

    if highest:
        while await db.write(step):
            pass
    return total


async def _prune_table(
    db: Database,
    table: str,
    before: str,
    delete: Callable[[Tx, list[int], str], int],
    *,
    chunk: int,
    window: int,
) -> int:
    """Walk `table`'s keys in windows of `window` (reads on the scan lane), deleting the old
    rows found, a chunk per write transaction; `delete` re-checks every condition, so a row
    that changed meanwhile stays."""

    def find(tx: Tx, after: int) -> tuple[list[int], int]:
        return tx.prune_candidates(table, before, after, window, chunk)

    def remove(tx: Tx, keys: list[int]) -> int:
        return delete(tx, keys, before)

    after, top = await db.scan(lambda tx: tx.key_range(table), owner=MAINTENANCE_OWNER)
    total = 0
    while after < top:
        keys, after = await db.scan(functools.partial(find, after=after), owner=MAINTENANCE_OWNER)
        if keys:
            total += await db.write(functools.partial(remove, keys=keys))
    return total
