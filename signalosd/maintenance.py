"""Scheduled upkeep: retention of events, idempotent replies, finished commands and the trade
history, so the database stays bounded.

The log keeps at least `event_retention_days`; a client resuming from a pruned seq is sent an
explicit reset, never a silent gap. Finished commands go after `command_retention_days`;
closed/failed trades and their signals (and skipped signals) after `trade_retention_days`. A
live trade (pending, open, closing), an unfinished command, a trade a remaining command names
and a signal a remaining trade names are never deleted, so every reference still resolves.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from . import commands
from .accounts import SYSTEM_ACTOR
from .clock import iso
from .config import Settings
from .store import Database, Tx

log = logging.getLogger("signalosd.maintenance")
EXPIRY_ACTOR = {"kind": "system", "id": None, "label": "expiry"}


async def run_once(db: Database, settings: Settings) -> dict[str, int]:
    def work(tx: Tx) -> dict[str, int]:
        cutoff = iso(tx.now_dt - timedelta(days=settings.event_retention_days))
        pruned = tx.prune_events(cutoff)
        replies = tx.prune_idempotency(
            iso(tx.now_dt - timedelta(seconds=settings.idempotency_ttl_s))
        )
        ago = tx.now_dt - timedelta(days=settings.command_retention_days)
        commands_pruned = tx.prune_commands(iso(ago))
        # Commands first (a trade is kept while a command names it), then trades, then signals
        # (trades.signal_id references signals).
        history = iso(tx.now_dt - timedelta(days=settings.trade_retention_days))
        trades_pruned = tx.prune_trades(history)
        signals_pruned = tx.prune_signals(history)
        if pruned:
            tx.append_event(
                None,
                "events_pruned",
                {"count": pruned, "through_seq": tx.pruned_through(), "older_than": cutoff},
                SYSTEM_ACTOR,
            )
        return {
            "events_pruned": pruned,
            "idempotency_pruned": replies,
            "commands_pruned": commands_pruned,
            "trades_pruned": trades_pruned,
            "signals_pruned": signals_pruned,
        }

    done = await db.write(work)
    log.info("event=maintenance %s", " ".join(f"{k}={v}" for k, v in done.items()))
    return done


async def expire_commands(db: Database) -> list[str]:
    """Expire queued commands past their expiry, whether or not an agent is connected."""
    if not await db.read(lambda tx: tx.queued_past_expiry()):
        return []  # the common case costs a read, not a durable write
    expired: list[str] = await db.write(lambda tx: commands.expire_due(tx, EXPIRY_ACTOR))
    if expired:
        log.info("event=commands_expired count=%d", len(expired))
    return expired
