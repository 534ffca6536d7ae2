"""What the agent reports, applied to the trade mirror and the outbox.

Each function runs inside the agent session's group-commit transaction (one item at a time,
under a savepoint), in the order the agent sent the messages. The agent is the source of truth
for positions; these functions keep the mirror in step and say so in events.
"""

from __future__ import annotations

from typing import Any

from signalosd.models import (
    AgentState,
    CommandResult,
    CommandStatus,
    CommandType,
    Position,
    SyncSnapshot,
    TradeStatus,
    TradeUpdate,
)
from signalosd.outbox import commands
from signalosd.store import Tx

_CLOSED_AT_BROKER = "not open at the broker any more (found by sync)"
# Plain strings: reading an Enum member's .value costs ~0.2 us, six times per agent update.
_OPEN, _CLOSED = TradeStatus.OPEN.value, TradeStatus.CLOSED.value
_PENDING, _FAILED = TradeStatus.PENDING.value, TradeStatus.FAILED.value
_GAVE_UP = (CommandStatus.CANCELLED.value, CommandStatus.EXPIRED.value)
# Commands that change the mode: while one is unfinished, the agent's mode may lag the daemon's.
_MODE_COMMANDS = (
    CommandType.PAUSE.value,
    CommandType.RESUME.value,
    CommandType.EMERGENCY_STOP.value,
)


def _mirror_fields(pos: Position) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ticket": pos.ticket,
        "symbol": pos.symbol,
        "side": pos.type.value,
        "volume": pos.volume,
        "open_price": pos.price_open,
        "current_price": pos.price_current,
        "sl": pos.sl,
        "tp": pos.tp,
        "profit": pos.profit,
        "swap": pos.swap,
    }
    if pos.time is not None:
        fields["opened_at"] = pos.time
    if pos.volume_min is not None:
        fields["volume_min"] = pos.volume_min
    if pos.volume_step is not None:
        fields["volume_step"] = pos.volume_step
    return fields


def apply_position(
    tx: Tx, account_id: int, pos: Position, actor: dict[str, Any], *, adopted_by: str
) -> str | None:
    """Upsert one position; return "adopted", "updated" or None (nothing changed)."""
    fields = _mirror_fields(pos)
    closed = isinstance(pos, TradeUpdate) and pos.status == "closed"
    if closed:
        assert isinstance(pos, TradeUpdate)
        fields["status"] = _CLOSED
        fields["closed_at"] = pos.closed_at or tx.now
        fields["close_reason"] = pos.close_reason
        if pos.close_price is not None:
            fields["current_price"] = pos.close_price
    row = tx.trade_by_ticket(account_id, pos.ticket)
    if row is None and pos.trade_id is not None:
        candidate = tx.get_trade(account_id, pos.trade_id)
        if candidate is not None and candidate["ticket"] is None:
            row = candidate
    if row is None:
        fields.setdefault("status", _OPEN)
        fields.setdefault("opened_at", tx.now)
        trade_id = tx.insert_trade(account_id, fields)
        trade = tx.get_trade(account_id, trade_id) or {}
        kind = "trade_closed" if closed else "trade_opened"
        tx.append_event(account_id, kind, trade | {"adopted": True, "via": adopted_by}, actor)
        return "adopted"
    if closed and row["status"] == _CLOSED:
        return None  # already known to be closed (e.g. by a sync)
    if not closed:
        # A close is on its way (or the position was pending): the broker's word on prices
        # and levels counts, the status only moves forward.
        if row["status"] in (_PENDING, _FAILED):
            fields["status"] = _OPEN
        elif row["status"] == _CLOSED:
            return None  # a late update of a position we already know is closed
    changes = {k: v for k, v in fields.items() if row.get(k) != v}
    if not changes:
        return None
    tx.update_trade(row["id"], changes)
    trade = row | changes | {"updated_at": tx.now}
    if changes.get("status") == _CLOSED:
        kind = "trade_closed"
    elif changes.get("status") == _OPEN and row["status"] != "closing":
        kind = "trade_opened"
    else:
        kind = "trade_update"
    tx.append_event(account_id, kind, trade, actor)
    return "updated"


def apply_snapshot(
    tx: Tx, account_id: int, snap: SyncSnapshot, actor: dict[str, Any]
) -> dict[str, int]:
    """Reconcile the mirror with every position the broker holds."""
    counts = {"adopted": 0, "closed": 0, "updated": 0, "positions": len(snap.positions)}
    held = set()
    for pos in snap.positions:
        held.add(pos.ticket)
        outcome = apply_position(tx, account_id, pos, actor, adopted_by="sync")
        if outcome is not None:
            counts[outcome] += 1
    for trade in tx.trades_at_broker(account_id):
        if trade["ticket"] in held:
            continue
        changes = {
            "status": _CLOSED,
            "closed_at": tx.now,
            "close_reason": _CLOSED_AT_BROKER,
        }
        tx.update_trade(trade["id"], changes)
        tx.append_event(account_id, "trade_closed", trade | changes | {"updated_at": tx.now}, actor)
        counts["closed"] += 1
    tx.append_event(account_id, "sync_completed", counts, actor)
    return counts


def apply_ack(tx: Tx, account_id: int, command_id: str, actor: dict[str, Any]) -> None:
    if tx.mark_acked(account_id, command_id):
        tx.append_event(account_id, "command_acked", {"command_id": command_id}, actor)


def apply_result(tx: Tx, account_id: int, res: CommandResult, actor: dict[str, Any]) -> None:
    """A command's outcome. A repeat (the agent re-sends a stored result on redelivery) or a
    result for an unknown command changes nothing."""
    command = tx.get_command(account_id, res.command_id)
    if command is None:
        return
    status = CommandStatus.SUCCEEDED if res.ok else CommandStatus.FAILED
    result = {"ok": res.ok, "error": res.error, "retcode": res.retcode, "data": res.data}
    if not tx.finish_command(account_id, res.command_id, status.value, result):
        if res.ok and command["status"] in _GAVE_UP:
            # The daemon had cancelled or expired it, yet the agent ran it (it began just
            # before learning so): the audit log says so rather than keep a wrong story.
            tx.append_event(
                account_id,
                "command_late_result",
                {
                    "command_id": res.command_id,
                    "type": command["type"],
                    "trade_id": command["trade_id"],
                    "status": command["status"],
                    "data": res.data,
                },
                actor,
            )
        return
    data: dict[str, Any] = {
        "command_id": res.command_id,
        "type": command["type"],
        "trade_id": command["trade_id"],
    }
    if res.ok:
        tx.append_event(account_id, "command_succeeded", data | {"data": res.data}, actor)
    else:
        reason = res.error or f"the broker refused it (retcode {res.retcode})"
        tx.append_event(
            account_id, "command_failed", data | {"reason": reason, "retcode": res.retcode}, actor
        )
    _effects(tx, account_id, command, res, actor)
    if command["type"] in _MODE_COMMANDS:
        check_mode(tx, account_id, actor)


def apply_agent_state(tx: Tx, account_id: int, state: AgentState, actor: dict[str, Any]) -> None:
    """The agent's report of its own mode (it sends one before the result of each command
    that changed it, and after each `welcome`)."""
    tx.save_agent_status(
        account_id,
        {
            "agent_mode": state.mode.value,
            "agent_halt_gen": state.halt_gen,
            "clock_offset_s": state.clock_offset_s,
        },
    )
    check_mode(tx, account_id, actor)


def check_mode(tx: Tx, account_id: int, actor: dict[str, Any]) -> None:
    """The agent's mode should converge on the daemon's: a difference that no unfinished
    pause, resume or emergency stop explains is a mismatch, raised as an event (once, until it
    clears) and kept for health and /metrics. Checked on each `agent_state` and on the result
    of each mode command (one that failed leaves the agent where it was)."""
    stored = tx.agent_status(account_id) or {}
    if stored.get("agent_mode") is None:
        return  # the agent has not said (an older agent)
    ours = tx.get_state(account_id)
    theirs = {"mode": stored["agent_mode"], "halt_gen": stored["agent_halt_gen"]}
    differs = theirs != {"mode": ours["mode"], "halt_gen": ours["halt_gen"]}
    mismatch = differs and not tx.unfinished_of_types(account_id, _MODE_COMMANDS)
    if mismatch == bool(stored.get("mode_mismatch")):
        return
    tx.save_agent_status(account_id, {"mode_mismatch": int(mismatch)})
    data = {"agent": theirs, "daemon": {"mode": ours["mode"], "halt_gen": ours["halt_gen"]}}
    tx.append_event(
        account_id, "agent_mode_mismatch" if mismatch else "agent_mode_converged", data, actor
    )


def _effects(
    tx: Tx, account_id: int, command: dict[str, Any], res: CommandResult, actor: dict[str, Any]
) -> None:
    """What a finished command means for the mirror."""
    type_, trade_id = CommandType(command["type"]), command["trade_id"]
    if trade_id is None:
        return
    trade = tx.get_trade(account_id, trade_id)
    if trade is None:
        return
    if type_ is CommandType.OPEN_TRADE:
        if not res.ok:
            commands.fail_pending_trade(tx, account_id, trade_id, res.error or "refused", actor)
        else:
            _opened(tx, account_id, trade, res.data, actor)
        return
    changes: dict[str, Any] = {}
    if type_ is CommandType.CLOSE_TRADE and not res.ok and trade["status"] == "closing":
        changes = {"status": _OPEN}  # still open: the close failed
    elif type_ is CommandType.TRAILING_STOP and res.ok:
        changes = {"trailing": command["params"].get("distance")}
    if changes:
        tx.update_trade(trade_id, changes)
        tx.append_event(account_id, "trade_update", trade | changes | {"updated_at": tx.now}, actor)


def _opened(
    tx: Tx,
    account_id: int,
    pending: dict[str, Any],
    data: dict[str, Any],
    actor: dict[str, Any],
) -> None:
    ticket = data.get("ticket")
    if not isinstance(ticket, int):
        return
    known = tx.trade_by_ticket(account_id, ticket)
    if known is not None and known["id"] != pending["id"]:
        # The position was adopted first (a snapshot after a reconnect): keep that row,
        # give it the signal, and retire the placeholder.
        tx.update_trade(known["id"], {"signal_id": pending["signal_id"]})
        commands.fail_pending_trade(
            tx, account_id, pending["id"], f"opened as trade {known['id']}", actor
        )
        return
    changes: dict[str, Any] = {"ticket": ticket, "opened_at": tx.now}
    if pending["status"] == _PENDING:
        changes["status"] = _OPEN
    if isinstance(data.get("price"), int | float):
        changes["open_price"] = float(data["price"])
    if isinstance(data.get("volume"), int | float):
        changes["volume"] = float(data["volume"])
    tx.update_trade(pending["id"], changes)
    tx.append_event(account_id, "trade_opened", pending | changes | {"updated_at": tx.now}, actor)
