"""Trade management requests, validated against the trade mirror before anything is queued.

The agent is the source of truth for positions; the daemon refuses what it can already tell is
wrong (unknown trade, closed trade, a stop on the wrong side of price, a partial close below the
minimum volume) and queues the rest for the agent, whose broker has the last word.
"""

from __future__ import annotations

from typing import Any

from signalosd.domain.context import Context
from signalosd.domain.outcomes import CommandQueued
from signalosd.domain.rules import partial_close_volume, require_manageable, validate_stops
from signalosd.errors import not_found
from signalosd.models import (
    CommandType,
    EventType,
    ModifyRequest,
    PartialCloseRequest,
    Side,
    TradeStatus,
    TrailingStopRequest,
)
from signalosd.outbox.enqueue import enqueue
from signalosd.store import Tx


def _open_trade(tx: Tx, ctx: Context, trade_id: int) -> dict[str, Any]:
    trade = tx.get_trade(ctx.account_id, trade_id)
    if trade is None:
        raise not_found("trade", trade_id)
    require_manageable(trade_id, TradeStatus(trade["status"]))
    return trade


def _target(trade: dict[str, Any]) -> dict[str, Any]:
    return {"ticket": trade["ticket"], "symbol": trade["symbol"], "side": trade["side"]}


def close(tx: Tx, ctx: Context, trade_id: int) -> CommandQueued:
    trade = _open_trade(tx, ctx, trade_id)
    command = enqueue(
        tx,
        ctx.policy,
        ctx.account_id,
        CommandType.CLOSE_TRADE,
        _target(trade) | {"volume": trade["volume"]},
        ctx.recorded_actor,
        trade_id,
    )
    # Marked closing at once so a second click gets a clear 409 instead of a second close.
    tx.update_trade(trade_id, {"status": TradeStatus.CLOSING.value})
    updated = tx.get_trade(ctx.account_id, trade_id)
    tx.append_event(ctx.account_id, EventType.TRADE_UPDATE, updated or {}, ctx.recorded_actor)
    return CommandQueued(command)


def partial_close(tx: Tx, ctx: Context, trade_id: int, req: PartialCloseRequest) -> CommandQueued:
    trade = _open_trade(tx, ctx, trade_id)
    fraction = req.fraction
    if req.percentage is not None:
        fraction = req.percentage / 100
    lots = partial_close_volume(
        trade["volume"],
        fraction=fraction,
        lots=req.volume,
        volume_min=trade["volume_min"],
        volume_step=trade["volume_step"],
    )
    command = enqueue(
        tx,
        ctx.policy,
        ctx.account_id,
        CommandType.PARTIAL_CLOSE,
        _target(trade) | {"volume": lots, "remaining": round(trade["volume"] - lots, 8)},
        ctx.recorded_actor,
        trade_id,
    )
    return CommandQueued(command)


def modify(tx: Tx, ctx: Context, trade_id: int, req: ModifyRequest) -> CommandQueued:
    trade = _open_trade(tx, ctx, trade_id)
    changes = req.changes()
    sl = changes.get("sl", trade["sl"])
    tp = changes.get("tp", trade["tp"])
    price = trade["current_price"] if trade["current_price"] is not None else trade["open_price"]
    # Only the levels being set are checked: an existing level the caller left alone is the
    # broker's business, and must not block moving the other one.
    validate_stops(
        Side(trade["side"]),
        price,
        changes.get("sl"),
        changes.get("tp"),
    )
    command = enqueue(
        tx,
        ctx.policy,
        ctx.account_id,
        CommandType.MODIFY_TRADE,
        _target(trade) | {"sl": sl, "tp": tp},
        ctx.recorded_actor,
        trade_id,
    )
    return CommandQueued(command)


def trailing_stop(tx: Tx, ctx: Context, trade_id: int, req: TrailingStopRequest) -> CommandQueued:
    trade = _open_trade(tx, ctx, trade_id)
    command = enqueue(
        tx,
        ctx.policy,
        ctx.account_id,
        CommandType.TRAILING_STOP,
        _target(trade) | {"distance": req.distance, "step": req.step},
        ctx.recorded_actor,
        trade_id,
    )
    return CommandQueued(command)
