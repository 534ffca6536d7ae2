"""Signal intake: a signal becomes an entry for the agent only while trading is running.

While paused or halted the signal is stored as `skipped` with the reason (invariant 4: no
`open_trade` command is created); likewise when the risk guard's entry limits refuse it
(docs/risk.md). `external_id` makes intake idempotent: a source that sends
the same signal twice gets the first outcome back and nothing is queued again.
"""

from __future__ import annotations

from signalosd.domain import risk_guard
from signalosd.domain.context import Context
from signalosd.domain.outcomes import SignalTaken
from signalosd.models import (
    CommandType,
    EventType,
    Mode,
    SignalRequest,
    SignalStatus,
    TradeStatus,
)
from signalosd.outbox.enqueue import enqueue
from signalosd.store import Tx


def ingest(tx: Tx, ctx: Context, req: SignalRequest) -> SignalTaken:
    if req.external_id is not None:
        seen = tx.get_signal(ctx.account_id, external_id=req.external_id)
        if seen is not None:
            command_id = seen["command_id"]
            command = None if command_id is None else tx.get_command(ctx.account_id, command_id)
            return SignalTaken(seen, duplicate=True, command=command)
    state = tx.get_state(ctx.account_id)
    fields = req.model_dump(exclude={"tp"}) | {"tp": req.tp}
    fields["side"] = req.side.value
    why = None
    if state["mode"] != Mode.RUNNING.value:
        why = f"trading is {state['mode']}" + (f": {state['reason']}" if state["reason"] else "")
    else:  # the entry limits (risk guard): refused, or counted towards today's entries
        why = risk_guard.admit_entry(tx, ctx.account_id, req.volume)
    if why is not None:
        signal_id = tx.insert_signal(
            ctx.account_id, fields | {"status": SignalStatus.SKIPPED.value, "reason": why}
        )
        signal = tx.get_signal(ctx.account_id, signal_id)
        tx.append_event(ctx.account_id, EventType.SIGNAL_SKIPPED, signal or {}, ctx.recorded_actor)
        return SignalTaken(signal, duplicate=False)

    signal_id = tx.insert_signal(ctx.account_id, fields | {"status": SignalStatus.ACCEPTED.value})
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
        tx, ctx.policy, ctx.account_id, CommandType.OPEN_TRADE, params, ctx.recorded_actor, trade_id
    )
    tx.update_trade(trade_id, {"command_id": command["id"]})
    tx.update_signal(signal_id, {"command_id": command["id"], "trade_id": trade_id})
    signal = tx.get_signal(ctx.account_id, signal_id)
    tx.append_event(ctx.account_id, EventType.SIGNAL_CREATED, signal or {}, ctx.recorded_actor)
    return SignalTaken(signal, duplicate=False, command=command)
