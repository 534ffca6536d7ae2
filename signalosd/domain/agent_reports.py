"""What the agent reports, applied to the trade mirror and the agent's mode; its acks and the
command part of its results are the outbox's (`outbox/results`).

Each function runs inside the agent session's group-commit transaction (one item at a time,
under a savepoint), in the order the agent sent the messages. The agent is the source of truth
for positions; these functions keep the mirror in step and say so in events.
"""

from __future__ import annotations

from typing import Any

from signalosd.models import (
    AgentState,
    CommandResult,
    CommandType,
    EventType,
    Position,
    SyncSnapshot,
    TradeStatus,
    TradeUpdate,
)
from signalosd.outbox import results
from signalosd.outbox.settle import fail_pending_trade
from signalosd.store import Tx

_CLOSED_AT_BROKER = "not open at the broker any more (found by sync)"
# Plain strings: reading an Enum member's .value costs ~0.2 us, six times per agent update.
_OPEN, _CLOSED = TradeStatus.OPEN.value, TradeStatus.CLOSED.value
_PENDING, _FAILED = TradeStatus.PENDING.value, TradeStatus.FAILED.value
_CLOSING = TradeStatus.CLOSING.value
# Likewise the events of the mirror (a str subclass also costs the store an adapter lookup).
_TRADE_OPENED, _TRADE_UPDATE = EventType.TRADE_OPENED.value, EventType.TRADE_UPDATE.value
_TRADE_CLOSED = EventType.TRADE_CLOSED.value
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
    closed = isinstance(pos, TradeUpdate) and pos.status == _CLOSED
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
        kind = _TRADE_CLOSED if closed else _TRADE_OPENED
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
        kind = _TRADE_CLOSED
    elif changes.get("status") == _OPEN and row["status"] != _CLOSING:
        kind = _TRADE_OPENED
    else:
        kind = _TRADE_UPDATE
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
        tx.append_event(account_id, _TRADE_CLOSED, trade | changes | {"updated_at": tx.now}, actor)
        counts["closed"] += 1
    tx.append_event(account_id, EventType.SYNC_COMPLETED, counts, actor)
    return counts


def apply_result(tx: Tx, account_id: int, res: CommandResult, actor: dict[str, Any]) -> None:
    """A command's outcome: the outbox finishes the command (a repeat or a result for an
    unknown command changes nothing), then the mirror and the agent's mode follow it."""
    command = results.finish(tx, account_id, res, actor)
    if command is None:
        return
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
    kind = EventType.AGENT_MODE_MISMATCH if mismatch else EventType.AGENT_MODE_CONVERGED
    tx.append_event(account_id, kind, data, actor)


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
            fail_pending_trade(tx, account_id, trade_id, res.error or "refused", actor)
        else:
            _opened(tx, account_id, trade, res.data, actor)
        return
    changes: dict[str, Any] = {}
    if type_ is CommandType.CLOSE_TRADE and not res.ok and trade["status"] == _CLOSING:
        changes = {"status": _OPEN}  # still open: the close failed
    elif type_ is CommandType.TRAILING_STOP and res.ok:
        changes = {"trailing": command["params"].get("distance")}
    if changes:
        tx.update_trade(trade_id, changes)
        tx.append_event(account_id, _TRADE_UPDATE, trade | changes | {"updated_at": tx.now}, actor)


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
        fail_pending_trade(tx, account_id, pending["id"], f"opened as trade {known['id']}", actor)
        return
    changes: dict[str, Any] = {"ticket": ticket, "opened_at": tx.now}
    if pending["status"] == _PENDING:
        changes["status"] = _OPEN
    if isinstance(data.get("price"), int | float):
        changes["open_price"] = float(data["price"])
    if isinstance(data.get("volume"), int | float):
        changes["volume"] = float(data["volume"])
    tx.update_trade(pending["id"], changes)
    tx.append_event(account_id, _TRADE_OPENED, pending | changes | {"updated_at": tx.now}, actor)
