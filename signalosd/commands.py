"""The outbox: commands for the desktop agent, committed before anyone is told "accepted".

This module creates and cancels commands inside a caller's transaction, and lets a request wait
for a command's outcome. Delivery to the agent lives with the agent session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .clock import iso
from .models import TERMINAL_COMMAND_STATUSES, CommandStatus, CommandType, TradeStatus
from .store import Database, EventRecord, Tx

# Lower runs first. Emergency stop jumps the queue; everything else keeps its order.
PRIORITY_EMERGENCY = 0
PRIORITY_NORMAL = 10


@dataclass(frozen=True, slots=True)
class CommandPolicy:
    """How long a queued command stays worth executing."""

    open_trade_ttl_s: float
    command_ttl_s: float

    def ttl(self, type_: CommandType) -> float | None:
        if type_ is CommandType.EMERGENCY_STOP:
            return None  # never expires: a late flatten is still wanted
        if type_ is CommandType.OPEN_TRADE:
            return self.open_trade_ttl_s  # a stale entry must never be executed
        return self.command_ttl_s


def enqueue(
    tx: Tx,
    policy: CommandPolicy,
    account_id: int,
    type_: CommandType,
    params: dict[str, Any],
    actor: dict[str, Any],
    trade_id: int | None = None,
) -> dict[str, Any]:
    ttl = policy.ttl(type_)
    expires_at = iso(tx.now_dt + timedelta(seconds=ttl)) if ttl is not None else None
    priority = PRIORITY_EMERGENCY if type_ is CommandType.EMERGENCY_STOP else PRIORITY_NORMAL
    command = tx.insert_command(
        str(uuid.uuid4()), account_id, type_.value, trade_id, params, priority, expires_at, actor
    )
    tx.append_event(
        account_id,
        "command_queued",
        {"command_id": command["id"], "type": type_.value, "trade_id": trade_id, "params": params},
        actor,
    )
    return command


def settle_unexecuted(
    tx: Tx, command: dict[str, Any], status: CommandStatus, reason: str, actor: dict[str, Any]
) -> bool:
    """Finish a command that never ran (cancelled or expired). An entry's pending trade
    becomes `failed` with the reason, so nobody waits for a position that will not come."""
    account_id = tx.account_id_of(command["account"])
    if not tx.finish_command(account_id, command["id"], status.value, {"reason": reason}):
        return False
    tx.append_event(
        account_id,
        f"command_{status.value}",
        {
            "command_id": command["id"],
            "type": command["type"],
            "trade_id": command["trade_id"],
            "reason": reason,
        },
        actor,
    )
    if command["type"] == CommandType.OPEN_TRADE.value and command["trade_id"] is not None:
        fail_pending_trade(tx, account_id, command["trade_id"], reason, actor)
    return True


def fail_pending_trade(
    tx: Tx, account_id: int, trade_id: int, reason: str, actor: dict[str, Any]
) -> None:
    trade = tx.get_trade(account_id, trade_id)
    if trade is None or trade["status"] != TradeStatus.PENDING.value:
        return
    changes = {"status": TradeStatus.FAILED.value, "close_reason": reason, "closed_at": tx.now}
    tx.update_trade(trade_id, changes)
    tx.append_event(account_id, "trade_update", trade | changes | {"updated_at": tx.now}, actor)


def cancel_queued(
    tx: Tx, account_id: int, type_: CommandType, reason: str, actor: dict[str, Any]
) -> list[str]:
    """Cancel every still-queued command of one type (emergency stop: pending entries)."""
    cancelled = []
    for command in tx.commands_with_status(account_id, CommandStatus.QUEUED.value, type_.value):
        if settle_unexecuted(tx, command, CommandStatus.CANCELLED, reason, actor):
            cancelled.append(command["id"])
    return cancelled


def expire_due(tx: Tx, actor: dict[str, Any]) -> list[str]:
    """Expire queued commands past their `expires_at`: a stale entry must never run."""
    expired = []
    for account_id, command_id in tx.queued_past_expiry():
        command = tx.get_command(account_id, command_id)
        if command is not None and settle_unexecuted(
            tx,
            command,
            CommandStatus.EXPIRED,
            f"not delivered before it expired at {command['expires_at']}",
            actor,
        ):
            expired.append(command_id)
    return expired


class CommandWaiters:
    """Long-poll support: wake requests waiting on a command when a `command_*` event for it is
    published, then re-read the command from the database (the source of truth)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}
        self._closing = False

    def on_event(self, event: EventRecord) -> None:
        if not event.type.startswith("command_") or not self._waiting:
            return
        command_id = json.loads(event.data_json).get("command_id")
        for fut in self._waiting.get(command_id, ()):
            if not fut.done():
                fut.set_result(None)

    def release_all(self) -> None:
        """Shutdown: answer every pending long-poll now, with the command as it stands, instead
        of holding the exit until the server cuts the request off without a reply."""
        self._closing = True
        for futures in self._waiting.values():
            for fut in futures:
                if not fut.done():
                    fut.set_result(None)

    async def wait(self, account_id: int, command_id: str, seconds: float) -> dict[str, Any] | None:
        """The command once finished, or as it stands when `seconds` have passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            self._waiting.setdefault(command_id, set()).add(fut)
            try:
                command = await self._db.read(lambda tx: tx.get_command(account_id, command_id))
                remaining = deadline - loop.time()
                if (
                    command is None
                    or command["status"] in TERMINAL_COMMAND_STATUSES
                    or remaining <= 0
                    or self._closing
                ):
                    return command
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(fut, remaining)
            finally:
                waiters = self._waiting.get(command_id)
                if waiters is not None:
                    waiters.discard(fut)
                    if not waiters:
                        del self._waiting[command_id]
