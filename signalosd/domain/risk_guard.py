"""The risk guard, inside the transactions that feed it (docs/risk.md).

Each function runs in one write transaction: it reads the account's limits and what the guard
remembers, applies the pure rules (risk_rules.py), appends the guard's events and saves its
memory. A trip is committed in the same transaction as the emergency stop it causes, so no
entry can slip between them; the stop is audited with the system actor `risk-guard`.

An account is guarded once its limits are set (`PUT /api/risk/limits`, even `{}`: then only
stale data is watched). Functions return a `GuardView` of what they committed, which the
daemon's watch (live/risk_watch.py) keeps to tell which statuses the guard must see at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from signalosd.clock import iso
from signalosd.domain import control
from signalosd.domain.context import Context
from signalosd.domain.risk_rules import (
    Latch,
    LimitStatus,
    RiskMemory,
    advance,
    count_entry,
    entry_refusal,
    evaluate,
    first_trip,
    memory_from_dict,
    memory_to_dict,
    roll_day,
)
from signalosd.models import Actor, ActorKind, EmergencyStopRequest, EventType
from signalosd.models.risk import LimitState, RiskLimits
from signalosd.outbox.deadlines import CommandPolicy
from signalosd.store import Tx

GUARD_ACTOR = Actor(kind=ActorKind.SYSTEM, id=None, label="risk-guard")
_ACTOR = GUARD_ACTOR.recorded()  # one dict: the store encodes an actor once per transaction


@dataclass(frozen=True, slots=True)
class GuardView:
    """What the guard committed for one account: its limits, its memory, each limit's state."""

    account_id: int
    limits: RiskLimits | None
    memory: RiskMemory
    states: dict[str, LimitState] = field(default_factory=dict)


def load(tx: Tx, account_id: int) -> tuple[RiskLimits | None, RiskMemory]:
    stored = tx.risk_limits(account_id)
    limits = None if stored is None else RiskLimits.from_stored(stored)
    return limits, memory_from_dict(tx.risk_memory(account_id))


def health(tx: Tx, account_id: int) -> dict[str, Any]:
    """The guard's part of /api/system/health."""
    guarded = tx.risk_limits(account_id) is not None
    memory = memory_from_dict(tx.risk_memory(account_id))
    latch = memory.latch
    return {
        "guarded": guarded,
        "stale": memory.stale,
        "latched": None if latch is None else latch.limit.value,
    }


def on_status(
    tx: Tx,
    account_id: int,
    policy: CommandPolicy,
    balance: float,
    equity: float,
    high: float | None = None,
) -> GuardView | None:
    """An account status the daemon applies: move the anchor and peaks, warn, trip."""
    limits, before = load(tx, account_id)
    if limits is None:
        return None
    now = tx.now_dt
    memory = advance(before, limits, balance, equity, now, high)
    _day_rolled(tx, account_id, before, memory)
    if before.stale:
        tx.append_event(
            account_id,
            EventType.RISK_DATA_FRESH,
            {"message": "Account status is coming in again", "equity": equity},
            _ACTOR,
        )
    memory, states = _judge(tx, account_id, policy, limits, memory, equity)
    tx.save_risk_memory(account_id, memory_to_dict(memory))
    return GuardView(account_id, limits, memory, states)


def on_timer(
    tx: Tx,
    account_id: int,
    policy: CommandPolicy,
    *,
    last_status_at: datetime | None,
    equity: float | None,
    stale_after_s: float,
) -> GuardView | None:
    """The guard's own clock: a reset passing without a status (a daily latch clears at its
    time), stale data with positions open, and the limits against the latest equity (limits
    just changed, say). `last_status_at` counts from the daemon's start at the earliest."""
    limits, before = load(tx, account_id)
    if limits is None:
        return None
    now = tx.now_dt
    memory = roll_day(before, limits, now)
    _day_rolled(tx, account_id, before, memory)
    states: dict[str, LimitState] = {}
    age = None if last_status_at is None else (now - last_status_at).total_seconds()
    stale = age is None or age > stale_after_s
    if stale and not memory.stale and (live := tx.count_live_trades(account_id)) > 0:
        memory = replace(memory, stale=True)
        _stale(tx, account_id, policy, limits, last_status_at, live, stale_after_s)
    if not stale and equity is not None:
        memory, states = _judge(tx, account_id, policy, limits, memory, equity)
    if memory != before:
        tx.save_risk_memory(account_id, memory_to_dict(memory))
    return GuardView(account_id, limits, memory, states)


def admit_entry(tx: Tx, account_id: int, volume: float) -> str | None:
    """Before an `open_trade` is created: why the entry limits refuse it, or None (and the
    entry counts towards today's)."""
    limits, memory = load(tx, account_id)
    if limits is None:
        return None
    now = tx.now_dt
    live = tx.count_live_trades(account_id) if limits.max_open_trades is not None else 0
    why = entry_refusal(memory, limits, now, volume, live)
    if why is None:
        tx.save_risk_memory(account_id, memory_to_dict(count_entry(memory, limits, now)))
    return why


def _judge(
    tx: Tx,
    account_id: int,
    policy: CommandPolicy,
    limits: RiskLimits,
    memory: RiskMemory,
    equity: float,
) -> tuple[RiskMemory, dict[str, LimitState]]:
    """Warn once per limit per day; trip (latch + emergency stop) on the first limit crossed
    (`_new_trip`: under a daily latch, a drawdown or the floor still trips)."""
    now_statuses = evaluate(memory, limits, equity)
    actor = _ACTOR
    warned = set(memory.warned)
    for status in now_statuses:
        if status.state is LimitState.OK or status.limit in warned:
            continue
        warned.add(status.limit)
        if status.state is LimitState.WARNING:
            tx.append_event(account_id, EventType.RISK_WARNING, _limit_data(status), actor)
    memory = replace(memory, warned=frozenset(warned))
    trip = _new_trip(memory.latch, now_statuses)
    if trip is not None:
        memory = replace(memory, latch=Latch(trip.limit, tx.now_dt, trip.value, trip.threshold))
        data = _limit_data(trip) | {"equity": equity, "flatten": limits.flatten_on_breach}
        tx.append_event(account_id, EventType.RISK_LIMIT_BREACHED, data, actor)
        _stop(
            tx,
            account_id,
            policy,
            f"risk limit {trip.limit.value} breached",
            limits.flatten_on_breach,
        )
    return memory, {s.limit.value: s.state for s in now_statuses}


def _new_trip(latch: Latch | None, now: list[LimitStatus]) -> LimitStatus | None:
    """The limit that trips now: the first crossed, with nothing latched; while a daily trip
    is latched, a drawdown or floor crossed since (it takes the latch over: it needs a
    confirmed reset, and the trader hears of it now, not after the daily reset)."""
    if latch is None:
        return first_trip(now)
    if latch.limit.is_daily:
        return first_trip([s for s in now if not s.limit.is_daily])
    return None


def _limit_data(status: LimitStatus) -> dict[str, Any]:
    return {
        "limit": status.limit.value,
        "value": round(status.value, 2),
        "threshold": status.threshold,
        "trip_below": round(status.trip_below, 2),
        "used_pct": status.used_pct,
        "anchor": status.anchor,
        "anchor_at": None if status.anchor_at is None else iso(status.anchor_at),
    }


def _stale(
    tx: Tx,
    account_id: int,
    policy: CommandPolicy,
    limits: RiskLimits,
    last_status_at: datetime | None,
    live: int,
    stale_after_s: float,
) -> None:
    tx.append_event(
        account_id,
        EventType.RISK_DATA_STALE,
        {
            "message": f"No account status for over {stale_after_s:g} s with {live} trades open",
            "last_status_at": None if last_status_at is None else iso(last_status_at),
            "open_trades": live,
            "stale_after_s": stale_after_s,
            "halt": limits.halt_on_stale,
        },
        _ACTOR,
    )
    if limits.halt_on_stale:  # halt only: flattening blind, on data we no longer have, is not ours
        _stop(tx, account_id, policy, "risk guard: account data stale", False)


def _day_rolled(tx: Tx, account_id: int, before: RiskMemory, after: RiskMemory) -> None:
    """A daily latch cleared by the reset time is audited like a confirmed reset."""
    if before.latch is not None and after.latch is None:
        tx.append_event(
            account_id,
            EventType.RISK_RESET,
            {
                "message": "Daily limit cleared by the reset time; trading stays halted until "
                "someone resumes from the halt",
                "cleared": before.latch.limit.value,
                "by": "reset_time",
            },
            _ACTOR,
        )


def _stop(tx: Tx, account_id: int, policy: CommandPolicy, reason: str, flatten: bool) -> None:
    ctx = Context(account_id, GUARD_ACTOR, policy)
    control.emergency_stop(tx, ctx, EmergencyStopRequest(reason=reason, close_all=flatten))
