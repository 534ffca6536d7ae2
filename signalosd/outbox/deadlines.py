"""Deadlines (invariant 10), the daemon's side, in one place: how long each command stays worth
executing, when one may no longer be sent, and when it is expired, with why.

Both paths that expire commands decide here: delivery, for the commands of a connected agent
(`Delivery.round`), and the periodic sweep, whether or not an agent is connected
(`expire_commands`). The agent enforces the same deadline on its side.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from signalosd.clock import iso
from signalosd.models import CommandStatus, CommandType, system_actor
from signalosd.outbox.settle import settle_unexecuted
from signalosd.store import Database, Tx

log = logging.getLogger("signalosd.outbox.deadlines")
EXPIRY_ACTOR = system_actor("expiry")


@dataclass(frozen=True, slots=True)
class CommandPolicy:
    """How long a command stays worth executing."""

    open_trade_ttl_s: float
    command_ttl_s: float
    # A sent or acked command past its deadline is never sent again, and the agent refuses it
    # from its deadline on; it is marked expired this much later, so that the result of one
    # the agent began just before its deadline is still taken (not reported as expired).
    expiry_grace_s: float = 10.0

    def ttl(self, type_: CommandType) -> float | None:
        if type_ is CommandType.EMERGENCY_STOP:
            return None  # never expires: a late flatten is still wanted
        if type_ is CommandType.OPEN_TRADE:
            return self.open_trade_ttl_s  # a stale entry must never be executed
        return self.command_ttl_s

    def grace_cutoff(self, now: datetime) -> str:
        """A sent or acked command whose deadline is at or before this is expired now."""
        return iso(now - timedelta(seconds=self.expiry_grace_s))


def past_deadline(command: dict[str, Any], now: str) -> bool:
    """True once a command must not be sent any more (an emergency stop never expires)."""
    expires_at = command["expires_at"]
    return expires_at is not None and expires_at <= now


def expiry_reason(
    command: dict[str, Any], now: datetime, policy: CommandPolicy, journal_floor: str | None
) -> str | None:
    """Why an unfinished command is to be marked expired now, or None.

    - queued past its deadline: it was never sent and never will be;
    - sent or acked past its deadline plus the grace: the agent refuses it from its deadline
      on, and had the grace to report one it started just before;
    - created before `journal_floor` (now minus how long the agent keeps the ids it executed):
      a redelivery could no longer be recognised as a duplicate, so it is never sent again.
    """
    if command["type"] == CommandType.EMERGENCY_STOP.value:
        return None  # the agent keeps every stop it executed: redelivery is always safe
    expires_at = command["expires_at"]
    if expires_at is not None:
        if command["status"] == CommandStatus.QUEUED.value:
            if expires_at <= iso(now):
                return f"not delivered before it expired at {expires_at}"
        elif expires_at <= policy.grace_cutoff(now):
            return f"not executed before it expired at {expires_at}"
    if journal_floor is not None and command["created_at"] < journal_floor:
        return (
            f"created at {command['created_at']}, before the oldest command the agent still "
            "remembers executing: never sent again, it could run twice"
        )
    return None


def expire(tx: Tx, command: dict[str, Any], reason: str, actor: dict[str, Any]) -> bool:
    """Mark an unfinished command expired (an entry's pending trade fails with it)."""
    return settle_unexecuted(tx, command, CommandStatus.EXPIRED, reason, actor)


def _due(tx: Tx, policy: CommandPolicy) -> list[tuple[int, str]]:
    """(account id, command id) of the commands `_expire_due` would expire: a cheap read
    first, so the common case costs no durable write."""
    return tx.unfinished_past_expiry(tx.now, policy.grace_cutoff(tx.now_dt))


def _expire_due(tx: Tx, policy: CommandPolicy) -> list[str]:
    expired = []
    for account_id, command_id in _due(tx, policy):
        command = tx.get_command(account_id, command_id)
        if command is None:
            continue
        reason = expiry_reason(command, tx.now_dt, policy, None)
        if reason is not None and expire(tx, command, reason, EXPIRY_ACTOR):
            expired.append(command_id)
    return expired


async def expire_commands(db: Database, policy: CommandPolicy) -> list[str]:
    """Expire commands past their deadline, whether or not an agent is connected."""
    if not await db.read(lambda tx: _due(tx, policy)):
        return []  # the common case costs a read, not a durable write
    expired: list[str] = await db.write(lambda tx: _expire_due(tx, policy))
    if expired:
        log.info("event=commands_expired count=%d", len(expired))
    return expired
