"""Scheduled upkeep: event retention and expiry of stored idempotent replies.

The log keeps at least `event_retention_days`; a client resuming from a pruned seq is sent an
explicit reset, never a silent gap.
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
        if pruned:
            tx.append_event(
                None,
                "events_pruned",
                {"count": pruned, "through_seq": tx.pruned_through(), "older_than": cutoff},
                SYSTEM_ACTOR,
            )
        return {"events_pruned": pruned, "idempotency_pruned": replies}

    done = await db.write(work)
    log.info(
        "event=maintenance events_pruned=%d idempotency_pruned=%d",
        done["events_pruned"],
        done["idempotency_pruned"],
    )
    return done


async def expire_commands(db: Database) -> list[str]:
    """Expire queued commands past their expiry, whether or not an agent is connected."""
    if not await db.read(lambda tx: tx.queued_past_expiry()):
        return []  # the common case costs a read, not a durable write
    expired: list[str] = await db.write(lambda tx: commands.expire_due(tx, EXPIRY_ACTOR))
    if expired:
        log.info("event=commands_expired count=%d", len(expired))
    return expired
