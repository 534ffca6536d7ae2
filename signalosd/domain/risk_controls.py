"""What people do with the risk guard: set the limits, reset a latched trip, and the state
they see (`GET /api/risk`). Each write runs in one transaction and is audited.

A confirmed reset clears the latch and, for a drawdown trip, measures the drawdown again from
the equity now (otherwise it could never clear: the money lost stays lost). It is refused while
the latest equity would trip a limit again, so a reset never hides a limit still crossed.
Trading stays halted either way: leaving the halt is its own act (resume with confirm_halt).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from signalosd.clock import iso
from signalosd.domain.context import Context
from signalosd.domain.outcomes import StateChange
from signalosd.domain.risk_day import next_reset
from signalosd.domain.risk_guard import GuardView, load
from signalosd.domain.risk_rules import RiskMemory, evaluate, first_trip, memory_to_dict, roll_day
from signalosd.errors import ApiError, ErrorCode
from signalosd.models import EventType
from signalosd.models.risk import LimitState, RiskLimits, RiskResetRequest
from signalosd.store import Tx

_DRAWDOWN = ("max_drawdown_money", "max_drawdown_pct")


def set_limits(
    tx: Tx, ctx: Context, limits: RiskLimits, seen: dict[str, Any] | None = None
) -> tuple[StateChange, GuardView]:
    """Replace the account's limits, whole. The guard judges them from the next status (or its
    timer, within `risk_check_interval_s`, against the latest equity)."""
    account_id = ctx.account_id
    previous = tx.risk_limits(account_id)
    wanted = limits.model_dump(mode="json")
    changed = previous != wanted
    if changed:
        tx.set_risk_limits(account_id, wanted)
        tx.append_event(
            account_id,
            EventType.RISK_LIMITS_CHANGED,
            {"limits": wanted, "previous": previous},
            ctx.recorded_actor,
        )
    _, memory = load(tx, account_id)
    message = "Risk limits set" if changed else "Risk limits unchanged: nothing changed"
    view = GuardView(account_id, limits, memory)
    state = view_of(tx, account_id, _latest(tx, account_id, seen))
    return StateChange(state, changed, message), view


def reset(
    tx: Tx, ctx: Context, req: RiskResetRequest, seen: dict[str, Any] | None = None
) -> tuple[StateChange, GuardView]:
    """Clear a latched trip (any: a daily one too, before its reset time), audited. `seen`
    is the latest status the agent sent (the throttle keeps most out of the store): the
    reset is judged on what `GET /api/risk` shows."""
    account_id = ctx.account_id
    if not req.confirm:
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            "confirm must be true: a reset lets trading resume after the risk guard's trip",
            {"field": "confirm"},
        )
    limits, memory = load(tx, account_id)
    latest = _latest(tx, account_id, seen)
    view = GuardView(account_id, limits, memory)
    latch = memory.latch
    if limits is None or latch is None:
        said = "No risk limits set" if limits is None else "Nothing latched"
        return StateChange(view_of(tx, account_id, latest), False, f"{said}: nothing changed"), view
    cleared = replace(memory, latch=None, warned=frozenset())
    equity, balance = (latest or {}).get("equity"), (latest or {}).get("balance")
    if latch.limit.value in _DRAWDOWN and isinstance(equity, float | int):
        top = float(equity) if balance is None else float(balance)
        cleared = replace(cleared, equity_peak=float(equity), eod_balance_peak=top)
    if isinstance(equity, float | int):
        again = first_trip(evaluate(cleared, limits, float(equity)))
        if again is not None:
            raise ApiError(
                ErrorCode.RISK_LATCHED,
                f"equity {float(equity):.2f} is still below the {again.limit.value} level "
                f"{again.trip_below:.2f}: the reset would trip again at once. Change the limit "
                "(signalos risk set) or wait for the next reset time",
                {"limit": again.limit.value, "equity": equity, "trip_below": again.trip_below},
            )
    tx.save_risk_memory(account_id, memory_to_dict(cleared))
    tx.append_event(
        account_id,
        EventType.RISK_RESET,
        {
            "message": "Risk trip reset; trading stays halted until someone resumes from the halt",
            "cleared": latch.limit.value,
            "by": "operator",
            "equity_peak": cleared.equity_peak,
            "eod_balance_peak": cleared.eod_balance_peak,
        },
        ctx.recorded_actor,
    )
    message = f"Risk trip {latch.limit.value} reset; trading stays halted until resumed"
    view = GuardView(account_id, limits, cleared)
    return StateChange(view_of(tx, account_id, latest), True, message), view


def view_of(tx: Tx, account_id: int, latest: dict[str, Any] | None) -> dict[str, Any]:
    """`GET /api/risk`: the limits, each loss limit's standing at the latest equity, the day's
    anchor, the latch, the entry counts and whether the data is stale."""
    limits, memory = load(tx, account_id)
    live = tx.count_live_trades(account_id)
    return describe(tx.now_dt, limits, memory, latest, live)


def describe(
    now: datetime,
    limits: RiskLimits | None,
    memory: RiskMemory,
    latest: dict[str, Any] | None,
    live_trades: int,
) -> dict[str, Any]:
    latest = latest or {}
    equity = latest.get("equity")
    equity = float(equity) if isinstance(equity, int | float) else None
    if limits is None:
        return {
            "guarded": False,
            "limits": None,
            "state": LimitState.OK.value,
            "latch": None,
            "day": None,
            "equity": equity,
            "equity_peak": None,
            "eod_balance_peak": None,
            "stale": False,
            "loss_limits": [],
            "entries": {
                "trades_today": 0,
                "max_trades_per_day": None,
                "open_trades": live_trades,
                "max_open_trades": None,
                "max_volume_per_trade": None,
            },
        }
    today = roll_day(memory, limits, now)
    hour, minute = limits.reset_hour_minute
    latch = today.latch
    loss = []
    for s in [] if equity is None else evaluate(today, limits, equity):
        state = s.state
        if latch is not None and latch.limit is s.limit:
            state = LimitState.TRIPPED  # latched: tripped until cleared, whatever equity did
        loss.append(
            {
                "limit": s.limit.value,
                "threshold": s.threshold,
                "trip_below": round(s.trip_below, 2),
                "value": round(s.value, 2),
                "used_pct": s.used_pct,
                "state": state.value,
                "anchor": s.anchor,
                "anchor_at": None if s.anchor_at is None else iso(s.anchor_at),
            }
        )
    states = [row["state"] for row in loss] + ([LimitState.TRIPPED.value] if latch else [])
    worst = LimitState.OK
    for candidate in (LimitState.WARNING, LimitState.TRIPPED):
        if candidate.value in states:
            worst = candidate
    return {
        "guarded": True,
        "limits": limits.model_dump(mode="json"),
        "state": worst.value,
        "latch": None
        if latch is None
        else latch.to_dict()
        | {"clears": "at the next reset" if latch.limit.is_daily else "by a confirmed reset"},
        "day": {
            "start": None if today.day_start is None else iso(today.day_start),
            "next_reset": iso(next_reset(now, hour, minute, limits.zone)),
            "anchor": today.day_anchor,
            "anchor_at": None if today.anchor_at is None else iso(today.anchor_at),
        },
        "equity": equity,
        "equity_peak": today.equity_peak,
        "eod_balance_peak": today.eod_balance_peak,
        "stale": today.stale,
        "loss_limits": loss,
        "entries": {
            "trades_today": today.trades_today,
            "max_trades_per_day": limits.max_trades_per_day,
            "open_trades": live_trades,
            "max_open_trades": limits.max_open_trades,
            "max_volume_per_trade": limits.max_volume_per_trade,
        },
    }


def _latest(tx: Tx, account_id: int, seen: dict[str, Any] | None) -> dict[str, Any] | None:
    if seen is not None:
        return seen
    stored = tx.agent_status(account_id) or {}
    status = stored.get("mt5")
    return status if isinstance(status, dict) else None
