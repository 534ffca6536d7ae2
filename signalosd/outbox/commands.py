"""The outbox: commands for the desktop agent, committed before anyone is told "accepted".

This module creates and cancels commands inside a caller's transaction, and lets a request wait
for a command's outcome. Delivery to the agent lives with the agent session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from signalosd.clock import iso
from signalosd.models import TERMINAL_COMMAND_STATUSES, CommandStatus, CommandType, TradeStatus
from signalosd.store import Database, EventRecord, Tx

# Lower runs first. Emergency stop jumps the queue; everything else keeps its order.
PRIORITY_EMERGENCY = 0
PRIORITY_NORMAL = 10

# What an emergency stop cancels when it commits, whatever state they are in short of done:
# entries, and resumes (which would lift the halt). Both also carry the halt generation they
# were issued in, so an agent that already holds one refuses it (docs/agent.md, "The fence").
FENCED = (CommandType.OPEN_TRADE, CommandType.RESUME)


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


def enqueue(
    tx: Tx,
    policy: CommandPolicy,
    account_id: int,
    type_: CommandType,
    params: dict[str, Any],
    actor: dict[str, Any],
    trade_id: int | None = None,
) -> dict[str, Any]:
    """Queue a command in the caller's transaction, stamped with the account's current halt
    generation (an emergency stop bumps it first, so the stop carries its own)."""
    ttl = policy.ttl(type_)
    expires_at = iso(tx.now_dt + timedelta(seconds=ttl)) if ttl is not None else None
    priority = PRIORITY_EMERGENCY if type_ is CommandType.EMERGENCY_STOP else PRIORITY_NORMAL
    halt_gen = int(tx.get_state(account_id)["halt_gen"])
    command = tx.insert_command(
        str(uuid.uuid4()),
        account_id,
        type_.value,
        trade_id,
        params,
        priority,
        expires_at,
        actor,
        halt_gen,
    )
    tx.append_event(
        account_id,
        "command_queued",
        {
            "command_id": command["id"],
            "type": type_.value,
            "trade_id": trade_id,
            "params": params,
            "halt_gen": halt_gen,
            "expires_at": expires_at,
        },
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


def cancel_unfinished(
    tx: Tx, account_id: int, types: Iterable[CommandType], reason: str, actor: dict[str, Any]
) -> list[str]:
    """Cancel every unfinished (queued, sent or acked) command of these types; their ids."""
    cancelled = []
    for command in tx.unfinished_of_types(account_id, (t.value for t in types)):
        if settle_unexecuted(tx, command, CommandStatus.CANCELLED, reason, actor):
            cancelled.append(command["id"])
    return cancelled


def cancel_fenced(tx: Tx, account_id: int, halt_gen: int, actor: dict[str, Any]) -> list[str]:
    """An emergency stop commits: cancel every unfinished entry and resume of the account,
    queued, sent or acked alike (an agent that already holds one refuses it by its older halt
    generation)."""
    reason = f"cancelled by emergency stop (halt generation {halt_gen})"
    return cancel_unfinished(tx, account_id, FENCED, reason, actor)


# ---- deadlines (invariant 10): the daemon's side, in one place -------------------------------


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
        elif expires_at <= iso(now - timedelta(seconds=policy.expiry_grace_s)):
            return f"not executed before it expired at {expires_at}"
    if journal_floor is not None and command["created_at"] < journal_floor:
        return (
            f"created at {command['created_at']}, before the oldest command the agent still "
            "remembers executing: never sent again, it could run twice"
        )
    return None


def expire(tx: Tx, command: dict[str, Any], reason: str, actor: dict[str, Any]) -> bool:
    return settle_unexecuted(tx, command, CommandStatus.EXPIRED, reason, actor)


def due_for_expiry(tx: Tx, policy: CommandPolicy) -> list[tuple[int, str]]:
    """(account id, command id) of the commands `expire_due` would expire: a cheap read first,
    so the common case costs no durable write."""
    return tx.unfinished_past_expiry(
        tx.now, iso(tx.now_dt - timedelta(seconds=policy.expiry_grace_s))
    )


def expire_due(tx: Tx, policy: CommandPolicy, actor: dict[str, Any]) -> list[str]:
    """Expire every command past its deadline (whether or not an agent is connected)."""
    expired = []
    for account_id, command_id in due_for_expiry(tx, policy):
        command = tx.get_command(account_id, command_id)
        if command is None:
            continue
        reason = expiry_reason(command, tx.now_dt, policy, None)
        if reason is not None and expire(tx, command, reason, actor):
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

    def waiting(self, command_id: str) -> int:
        """How many requests long-poll this command now (a client's `--wait` is in flight)."""
        return len(self._waiting.get(command_id, ()))

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
