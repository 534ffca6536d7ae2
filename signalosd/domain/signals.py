"""Signal intake: a signal becomes an entry for the agent only while trading is running.

While paused or halted the signal is stored as `skipped` with the reason (invariant 4: no
`open_trade` command is created). `external_id` makes intake idempotent: a source that sends
the same signal twice gets the first outcome back and nothing is queued again.
"""

from __future__ import annotations

from typing import Any

from signalosd.domain.control import Ctx, Reply
from signalosd.models import CommandType, Mode, SignalRequest, TradeStatus
from signalosd.outbox.enqueue import enqueue
from signalosd.store import Tx


def ingest(tx: Tx, ctx: Ctx, req: SignalRequest) -> Reply:
    if req.external_id is not None:
        seen = tx.get_signal(ctx.account_id, external_id=req.external_id)
        if seen is not None:
            body: dict[str, Any] = {"signal": seen, "duplicate": True}
            if seen["command_id"] is not None:
                body["command"] = tx.get_command(ctx.account_id, seen["command_id"])
            return 200, body
    state = tx.get_state(ctx.account_id)
    fields = req.model_dump(exclude={"tp"}) | {"tp": req.tp}
    fields["side"] = req.side.value
    if state["mode"] != Mode.RUNNING.value:
        why = f"trading is {state['mode']}" + (f": {state['reason']}" if state["reason"] else "")
        signal_id = tx.insert_signal(ctx.account_id, fields | {"status": "skipped", "reason": why})
        signal = tx.get_signal(ctx.account_id, signal_id)
        tx.append_event(ctx.account_id, "signal_skipped", signal or {}, ctx.actor)
        return 200, {"signal": signal, "duplicate": False}

    signal_id = tx.insert_signal(ctx.account_id, fields | {"status": "accepted"})
    trade_id = tx.insert_trade(
        ctx.account_id,
        {
            "symbol": req.symbol,
            "side": req.side.value,
            "volume": req.volume,
            "open_price": req.entry,
            "sl": req.sl,
            "tp": req.tp[0] if req.tp else None,
            "status": TradeStatus.PENDING.value,
            "signal_id": signal_id,
        },
    )
    params = {
        "symbol": req.symbol,
        "side": req.side.value,
        "volume": req.volume,
        "entry": req.entry,
        "sl": req.sl,
        "tp": req.tp,
        "signal_id": signal_id,
        "source": req.source,
    }
    command = enqueue(
        tx, ctx.policy, ctx.account_id, CommandType.OPEN_TRADE, params, ctx.actor, trade_id
    )
    tx.update_trade(trade_id, {"command_id": command["id"]})
    tx.update_signal(signal_id, {"command_id": command["id"], "trade_id": trade_id})
    signal = tx.get_signal(ctx.account_id, signal_id)
    tx.append_event(ctx.account_id, "signal_created", signal or {}, ctx.actor)
    return 202, {"signal": signal, "command": command, "duplicate": False}
