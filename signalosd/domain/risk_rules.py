"""The risk guard's rules: what it remembers of an account, how an account status moves that,
and where each loss limit stands (docs/risk.md). Pure functions; the guard that runs them in
the status update's transaction, and commits the trip with the emergency stop it causes, is
built on these.

Definitions (`equity` is the status's, money in the account's currency):
- the day anchor is taken from the first status at or after each reset: the balance, or the
  higher of balance and equity (`daily_anchor`); a daemon that was down across a reset takes it
  from the first status after it;
- daily loss: trips when equity < anchor - limit, the limit being `daily_loss_money`, or
  `daily_loss_pct` of the anchor or of `initial_balance` (`daily_loss_of`);
- drawdown: trips when equity < peak - limit, the peak being the highest equity seen
  (`equity_peak`) or the highest end-of-day balance (`eod_balance`, never lowered), the limit
  `max_drawdown_money` or `max_drawdown_pct` of the peak;
- floor: trips when equity < `equity_floor`;
- a limit is `warning` once `warn_at_pct` of it is used (for the floor: of the way from the
  day anchor down to it), `tripped` below it (strictly).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from signalosd.clock import iso
from signalosd.domain.risk_day import day_start
from signalosd.models.risk import (
    DailyAnchor,
    DrawdownMode,
    LimitState,
    LossBase,
    RiskLimit,
    RiskLimits,
)


@dataclass(frozen=True, slots=True)
class Latch:
    """A tripped loss limit, kept until it is cleared: a daily one by the next reset, the
    others by a confirmed reset (`POST /api/risk/reset`)."""

    limit: RiskLimit
    at: datetime
    value: float
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "limit": self.limit.value,
            "at": iso(self.at),
            "value": self.value,
            "threshold": self.threshold,
        }


@dataclass(frozen=True, slots=True)
class RiskMemory:
    """What the guard keeps per account across statuses and restarts."""

    day_start: datetime | None = None  # the reset the anchor belongs to
    day_anchor: float | None = None  # None from a reset until the first status after it
    anchor_at: datetime | None = None  # when the anchor was taken
    equity_peak: float | None = None
    eod_balance_peak: float | None = None
    last_balance: float | None = None  # the end-of-day balance, when a reset comes
    trades_today: int = 0
    latch: Latch | None = None
    warned: frozenset[RiskLimit] = frozenset()  # limits warned of since the last reset
    stale: bool = False  # `risk_data_stale` said, no status since


@dataclass(frozen=True, slots=True)
class LimitStatus:
    """One loss limit now: as set (`threshold`), the equity it trips below (`trip_below`),
    the current value (the loss so far, or the equity for the floor), how much is used."""

    limit: RiskLimit
    threshold: float
    trip_below: float
    value: float
    used_pct: float
    state: LimitState
    anchor: float
    anchor_at: datetime | None


def roll_day(memory: RiskMemory, limits: RiskLimits, now: datetime) -> RiskMemory:
    """`memory` at `now`: when a reset has passed since its day began, a new day without an
    anchor yet (the next status gives it): today's entry count starts again, a daily latch and
    the day's warnings clear, the last day's closing balance counts towards the EOD peak."""
    hour, minute = limits.reset_hour_minute
    start = day_start(now, hour, minute, limits.zone)
    if memory.day_start is not None and memory.day_start >= start:
        return memory
    eod_peak = memory.eod_balance_peak
    if memory.last_balance is not None:  # the balance the last day ended with
        eod_peak = memory.last_balance if eod_peak is None else max(eod_peak, memory.last_balance)
    latch = memory.latch
    if latch is not None and latch.limit.is_daily:
        latch = None
    return replace(
        memory,
        day_start=start,
        day_anchor=None,
        anchor_at=None,
        eod_balance_peak=eod_peak,
        trades_today=0,
        latch=latch,
        warned=frozenset(),
    )


def advance(
    memory: RiskMemory,
    limits: RiskLimits,
    balance: float,
    equity: float,
    now: datetime,
    high: float | None = None,
) -> RiskMemory:
    """`memory` after an account status at `now`: the day rolled if a reset has passed, the
    day's anchor from the first status of the day, then the peaks. `high` is the highest
    equity reported since the last status the guard saw (the throttle drops most of them)."""
    memory = roll_day(memory, limits, now)
    if memory.day_anchor is None:
        anchor = balance if limits.daily_anchor is DailyAnchor.BALANCE else max(balance, equity)
        eod_peak = balance if memory.eod_balance_peak is None else memory.eod_balance_peak
        memory = replace(memory, day_anchor=anchor, anchor_at=now, eod_balance_peak=eod_peak)
    top = equity if high is None else max(high, equity)
    peak = top if memory.equity_peak is None else max(memory.equity_peak, top)
    return replace(memory, equity_peak=peak, last_balance=balance, stale=False)


def count_entry(memory: RiskMemory, limits: RiskLimits, now: datetime) -> RiskMemory:
    """`memory` with one more entry today (after rolling the day: a signal can be the first
    thing after a reset)."""
    memory = roll_day(memory, limits, now)
    return replace(memory, trades_today=memory.trades_today + 1)


def entry_refusal(
    memory: RiskMemory,
    limits: RiskLimits,
    now: datetime,
    volume: float,
    live_trades: int,
) -> str | None:
    """Why a new entry of `volume` must be skipped, or None (the entry limits)."""
    if limits.max_volume_per_trade is not None and volume > limits.max_volume_per_trade:
        return (
            f"risk limit max_volume_per_trade: volume {volume:g} is above "
            f"{limits.max_volume_per_trade:g}"
        )
    if limits.max_open_trades is not None and live_trades >= limits.max_open_trades:
        return (
            f"risk limit max_open_trades: {live_trades} trades open or opening, "
            f"the limit is {limits.max_open_trades}"
        )
    if limits.max_trades_per_day is not None:
        today = roll_day(memory, limits, now).trades_today
        if today >= limits.max_trades_per_day:
            return (
                f"risk limit max_trades_per_day: {today} entries since the last reset, "
                f"the limit is {limits.max_trades_per_day}"
            )
    return None


def evaluate(memory: RiskMemory, limits: RiskLimits, equity: float) -> list[LimitStatus]:
    """Where each configured loss limit stands at `equity` (after `advance` for the status).
    The daily limits wait for the day's anchor; the floor measures its warning from the
    anchor (or, before the day's first status, from the equity peak, or the equity itself)."""
    anchor = memory.day_anchor
    out: list[LimitStatus] = []

    def add(limit: RiskLimit, threshold: float, ref: float, allowed: float, value: float) -> None:
        trip_below = ref - allowed
        used = max(ref - equity, 0.0) / allowed * 100 if allowed > 0 else 100.0
        if equity < trip_below:
            state = LimitState.TRIPPED
        elif used >= limits.warn_at_pct:
            state = LimitState.WARNING
        else:
            state = LimitState.OK
        out.append(
            LimitStatus(
                limit, threshold, trip_below, value, round(used, 2), state, ref, memory.anchor_at
            )
        )

    if anchor is not None:
        loss = anchor - equity
        if limits.daily_loss_money is not None:
            money = limits.daily_loss_money
            add(RiskLimit.DAILY_LOSS_MONEY, money, anchor, money, loss)
        if limits.daily_loss_pct is not None:
            base = anchor
            if limits.daily_loss_of is LossBase.INITIAL and limits.initial_balance is not None:
                base = limits.initial_balance
            pct = limits.daily_loss_pct
            add(RiskLimit.DAILY_LOSS_PCT, pct, anchor, base * pct / 100, loss)
    peak = memory.equity_peak
    if limits.drawdown_mode is DrawdownMode.EOD_BALANCE:
        peak = memory.eod_balance_peak
    if peak is not None:
        down = peak - equity
        if limits.max_drawdown_money is not None:
            money = limits.max_drawdown_money
            add(RiskLimit.MAX_DRAWDOWN_MONEY, money, peak, money, down)
        if limits.max_drawdown_pct is not None:
            pct = limits.max_drawdown_pct
            add(RiskLimit.MAX_DRAWDOWN_PCT, pct, peak, peak * pct / 100, down)
    if limits.equity_floor is not None:
        floor = limits.equity_floor
        ref = anchor if anchor is not None else memory.equity_peak
        ref = max(equity, floor) if ref is None else ref  # no status yet: the equity now
        add(RiskLimit.EQUITY_FLOOR, floor, ref, ref - floor, equity)
    return out


def first_trip(statuses: list[LimitStatus]) -> LimitStatus | None:
    """The limit that trips the guard, if any (in the order `evaluate` lists them)."""
    return next((s for s in statuses if s.state is LimitState.TRIPPED), None)


# ---- kept in the store (store/risk.py) as a JSON object --------------------------------------


def _time(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def _parse(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def memory_to_dict(memory: RiskMemory) -> dict[str, Any]:
    latch = memory.latch
    return {
        "day_start": _time(memory.day_start),
        "day_anchor": memory.day_anchor,
        "anchor_at": _time(memory.anchor_at),
        "equity_peak": memory.equity_peak,
        "eod_balance_peak": memory.eod_balance_peak,
        "last_balance": memory.last_balance,
        "trades_today": memory.trades_today,
        "warned": sorted(limit.value for limit in memory.warned),
        "stale": memory.stale,
        "latch": None if latch is None else latch.to_dict(),
    }


def memory_from_dict(stored: dict[str, Any] | None) -> RiskMemory:
    """What `memory_to_dict` stored (an empty memory for None: the guard starts fresh)."""
    if stored is None:
        return RiskMemory()
    latch = stored.get("latch")
    return RiskMemory(
        day_start=_parse(stored.get("day_start")),
        day_anchor=stored.get("day_anchor"),
        anchor_at=_parse(stored.get("anchor_at")),
        equity_peak=stored.get("equity_peak"),
        eod_balance_peak=stored.get("eod_balance_peak"),
        last_balance=stored.get("last_balance"),
        trades_today=int(stored.get("trades_today", 0)),
        warned=frozenset(RiskLimit(v) for v in stored.get("warned", ())),
        stale=bool(stored.get("stale", False)),
        latch=None
        if latch is None
        else Latch(
            RiskLimit(latch["limit"]),
            datetime.fromisoformat(latch["at"]),
            float(latch["value"]),
            float(latch["threshold"]),
        ),
    )
