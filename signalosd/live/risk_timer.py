"""The risk guard's own clock: what it must do with no status coming in.

Every `risk_check_interval_s` it asks the watch which guarded accounts have work (a reset time
passed, data gone stale with trades open, new limits the latest equity already crosses) and
runs the guard in one short write transaction for each; an account with nothing to do costs
no database work at all, so the writer stays free for the emergency stop.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from signalosd.config import Settings
from signalosd.domain import risk_guard
from signalosd.live.risk_watch import Due, RiskWatch
from signalosd.outbox.deadlines import CommandPolicy
from signalosd.store import Database, Tx

Guarded = list[tuple[int, dict[str, Any], dict[str, Any] | None]]
LastStatus = dict[int, tuple[datetime | None, float | None]]


def _guarded(tx: Tx) -> tuple[Guarded, LastStatus]:
    guarded = tx.guarded_accounts()
    last: LastStatus = {}
    for account_id, _, _ in guarded:
        stored = tx.agent_status(account_id) or {}
        mt5, at = stored.get("mt5"), stored.get("mt5_at")
        equity = mt5.get("equity") if isinstance(mt5, dict) else None
        last[account_id] = (None if at is None else datetime.fromisoformat(at), equity)
    return guarded, last


async def load(db: Database, watch: RiskWatch) -> None:
    """At the start: every guarded account, with when its last status came."""
    guarded, last = await db.read(_guarded)
    watch.load(guarded, last)


async def check(db: Database, watch: RiskWatch, policy: CommandPolicy, settings: Settings) -> int:
    """One round; how many accounts the guard wrote for."""
    now = db.clock.now()
    stale_after = settings.risk_stale_after_s
    wrote = 0
    for account_id in watch.accounts():
        due = watch.due(account_id, now, stale_after)
        if due is None:
            continue
        if due is Due.STALE:
            live = await db.read(functools.partial(_live_trades, account_id=account_id))
            if live == 0:
                continue  # nothing at risk: stale data is no hazard yet
        at, equity = watch.last_status(account_id)
        view = await db.write(
            functools.partial(
                risk_guard.on_timer,
                account_id=account_id,
                policy=policy,
                last_status_at=at,
                equity=equity,
                stale_after_s=stale_after,
            )
        )
        watch.committed(view)
        wrote += 1
    return wrote


def _live_trades(tx: Tx, *, account_id: int) -> int:
    return tx.count_live_trades(account_id)
