"""The risk guard's rules (domain/risk_rules.py, risk_day.py) and its limits' validation
(models/risk.py): the day's reset in the trader's zone, DST included, and each limit's
definition (docs/risk.md)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from signalosd.domain.risk_day import day_start, next_reset, reset_on
from signalosd.domain.risk_rules import Latch, RiskMemory, advance, evaluate, first_trip
from signalosd.models.risk import (
    DailyAnchor,
    DrawdownMode,
    LimitState,
    LossBase,
    RiskLimit,
    RiskLimits,
)

PRAGUE = ZoneInfo("Europe/Prague")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---- the day's reset -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "hour", "minute", "start", "following"),
    [
        # winter: Prague is UTC+1, midnight there is 23:00 UTC the day before
        ("2026-01-15T10:00:00", 0, 0, "2026-01-14T23:00:00", "2026-01-15T23:00:00"),
        ("2026-01-15T22:59:59", 0, 0, "2026-01-14T23:00:00", "2026-01-15T23:00:00"),
        ("2026-01-15T23:00:00", 0, 0, "2026-01-15T23:00:00", "2026-01-16T23:00:00"),
        # summer: UTC+2
        ("2026-07-01T21:59:00", 0, 0, "2026-06-30T22:00:00", "2026-07-01T22:00:00"),
        # across the spring change (29 March 2026, 02:00 -> 03:00): the next midnight is UTC+2
        ("2026-03-29T12:00:00", 0, 0, "2026-03-28T23:00:00", "2026-03-29T22:00:00"),
        # across the autumn change (25 October 2026, 03:00 -> 02:00): back to UTC+1
        ("2026-10-25T12:00:00", 0, 0, "2026-10-24T22:00:00", "2026-10-25T23:00:00"),
        # a reset at 17:00 Prague (a broker's day end)
        ("2026-01-15T15:59:00", 17, 0, "2026-01-14T16:00:00", "2026-01-15T16:00:00"),
    ],
)
def test_the_day_starts_at_the_reset_time_in_the_traders_zone(
    now: str, hour: int, minute: int, start: str, following: str
) -> None:
    assert day_start(utc(now), hour, minute, PRAGUE) == utc(start)
    assert next_reset(utc(now), hour, minute, PRAGUE) == utc(following)


def test_a_reset_time_the_clocks_skip_happens_when_they_jump() -> None:
    # 29 March 2026 in Prague: 02:00 CET becomes 03:00 CEST at 01:00 UTC; 02:30 never happens
    assert reset_on(datetime(2026, 3, 29).date(), 2, 30, PRAGUE) == utc("2026-03-29T01:00:00")


def test_a_reset_time_the_clocks_pass_twice_happens_the_first_time() -> None:
    # 25 October 2026: 02:30 CEST (00:30 UTC), then 02:30 CET (01:30 UTC)
    assert reset_on(datetime(2026, 10, 25).date(), 2, 30, PRAGUE) == utc("2026-10-25T00:30:00")


def test_the_day_is_always_24_hours_of_wall_clock_not_of_utc() -> None:
    starts = [
        day_start(utc("2026-03-27T12:00:00") + timedelta(days=n), 0, 0, PRAGUE) for n in range(4)
    ]
    lengths = [(b - a).total_seconds() / 3600 for a, b in itertools.pairwise(starts)]
    assert lengths == [24, 24, 23]  # 29 March, the spring day, is an hour short


# ---- what the guard remembers ----------------------------------------------------------------

LIMITS = RiskLimits(daily_loss_money=500.0, max_drawdown_pct=10.0)


def test_the_first_status_sets_the_anchor_and_the_peaks() -> None:
    memory = advance(RiskMemory(), LIMITS, 10_000.0, 9_900.0, utc("2026-01-15T10:00:00"))
    assert memory.day_start == utc("2026-01-14T23:00:00")
    assert (memory.day_anchor, memory.equity_peak, memory.eod_balance_peak) == (
        10_000.0,
        9_900.0,
        10_000.0,
    )
    assert memory.anchor_at == utc("2026-01-15T10:00:00")


def test_the_anchor_can_be_the_higher_of_balance_and_equity() -> None:
    limits = RiskLimits(daily_loss_money=500.0, daily_anchor=DailyAnchor.MAX_BALANCE_EQUITY)
    memory = advance(RiskMemory(), limits, 10_000.0, 10_300.0, utc("2026-01-15T10:00:00"))
    assert memory.day_anchor == 10_300.0


def test_a_reset_takes_a_new_anchor_counts_the_days_end_balance_and_clears_a_daily_latch() -> None:
    day1 = utc("2026-01-15T10:00:00")
    memory = advance(RiskMemory(), LIMITS, 10_000.0, 10_000.0, day1)
    memory = advance(memory, LIMITS, 10_400.0, 10_400.0, day1 + timedelta(hours=12))  # 22:00 UTC
    tripped = Latch(RiskLimit.DAILY_LOSS_MONEY, day1, 600.0, 500.0)
    memory = replace(memory, latch=tripped, trades_today=3)
    after_midnight = utc("2026-01-15T23:00:01")
    memory = advance(memory, LIMITS, 10_200.0, 10_150.0, after_midnight)
    assert memory.day_start == utc("2026-01-15T23:00:00")
    assert memory.day_anchor == 10_200.0  # the first status after the reset
    assert memory.eod_balance_peak == 10_400.0  # the balance day 1 ended with
    assert memory.trades_today == 0
    assert memory.latch is None


def test_a_drawdown_latch_survives_the_reset_and_the_eod_peak_never_goes_down() -> None:
    day1 = utc("2026-01-15T10:00:00")
    memory = advance(RiskMemory(), LIMITS, 10_000.0, 10_000.0, day1)
    latch = Latch(RiskLimit.MAX_DRAWDOWN_PCT, day1, 1_100.0, 10.0)
    memory = replace(memory, latch=latch)
    memory = advance(memory, LIMITS, 9_000.0, 9_000.0, day1 + timedelta(hours=6))
    memory = advance(memory, LIMITS, 9_100.0, 9_100.0, day1 + timedelta(days=1))
    assert memory.latch == latch
    assert memory.eod_balance_peak == 10_000.0  # day 1 ended at 9,000: the peak stays


def test_a_daemon_down_across_a_reset_takes_the_anchor_from_the_first_status_after_it() -> None:
    memory = advance(RiskMemory(), LIMITS, 10_000.0, 10_000.0, utc("2026-01-15T10:00:00"))
    later = utc("2026-01-17T08:00:00")  # two resets missed
    memory = advance(memory, LIMITS, 9_700.0, 9_650.0, later)
    assert (memory.day_start, memory.day_anchor, memory.anchor_at) == (
        utc("2026-01-16T23:00:00"),
        9_700.0,
        later,
    )


# ---- each limit ------------------------------------------------------------------------------


def state_after(limits: RiskLimits, *statuses: tuple[float, float]) -> dict[RiskLimit, Any]:
    """Each limit's status after these (balance, equity) statuses, a minute apart."""
    memory = RiskMemory()
    now = utc("2026-01-15T08:00:00")
    for balance, equity in statuses:
        memory = advance(memory, limits, balance, equity, now)
        now += timedelta(minutes=1)
    return {s.limit: s for s in evaluate(memory, limits, statuses[-1][1])}


@pytest.mark.parametrize(
    ("limits", "statuses", "limit", "state", "trip_below"),
    [
        # money: 10,000 anchor, 500 allowed
        (RiskLimits(daily_loss_money=500.0), [(10_000, 10_000), (10_000, 9_600)],
         RiskLimit.DAILY_LOSS_MONEY, LimitState.WARNING, 9_500.0),  # 400 of 500 = 80 %
        (RiskLimits(daily_loss_money=500.0), [(10_000, 10_000), (10_000, 9_500)],
         RiskLimit.DAILY_LOSS_MONEY, LimitState.WARNING, 9_500.0),  # at the line, not below
        (RiskLimits(daily_loss_money=500.0), [(10_000, 10_000), (10_000, 9_499.99)],
         RiskLimit.DAILY_LOSS_MONEY, LimitState.TRIPPED, 9_500.0),
        # percent of the anchor, and of the initial balance (FTMO: 5 % of the initial 100,000)
        (RiskLimits(daily_loss_pct=5.0), [(12_000, 12_000), (12_000, 11_390)],
         RiskLimit.DAILY_LOSS_PCT, LimitState.TRIPPED, 11_400.0),
        (RiskLimits(daily_loss_pct=5.0, daily_loss_of=LossBase.INITIAL, initial_balance=100_000.0),
         [(104_000, 104_000), (104_000, 99_100)],
         RiskLimit.DAILY_LOSS_PCT, LimitState.WARNING, 99_000.0),
        (RiskLimits(daily_loss_pct=5.0, daily_anchor=DailyAnchor.MAX_BALANCE_EQUITY),
         [(10_000, 10_400), (10_000, 9_870)],
         RiskLimit.DAILY_LOSS_PCT, LimitState.TRIPPED, 9_880.0),  # 5 % of 10,400
        # drawdown from the equity peak, and from the end-of-day balance peak
        (RiskLimits(max_drawdown_money=1_000.0), [(10_000, 10_000), (10_000, 11_000),
                                                  (10_000, 9_999)],
         RiskLimit.MAX_DRAWDOWN_MONEY, LimitState.TRIPPED, 10_000.0),
        (RiskLimits(max_drawdown_pct=10.0, drawdown_mode=DrawdownMode.EOD_BALANCE),
         [(10_000, 10_000), (10_000, 12_000), (10_000, 9_050)],
         RiskLimit.MAX_DRAWDOWN_PCT, LimitState.WARNING, 9_000.0),  # intraday equity: no peak
        # the floor, measured from the day's anchor
        (RiskLimits(equity_floor=9_000.0), [(10_000, 10_000), (10_000, 9_150)],
         RiskLimit.EQUITY_FLOOR, LimitState.WARNING, 9_000.0),
        (RiskLimits(equity_floor=9_000.0), [(10_000, 10_000), (10_000, 8_999)],
         RiskLimit.EQUITY_FLOOR, LimitState.TRIPPED, 9_000.0),
        (RiskLimits(equity_floor=9_000.0, warn_at_pct=90.0), [(10_000, 10_000), (10_000, 9_150)],
         RiskLimit.EQUITY_FLOOR, LimitState.OK, 9_000.0),  # 85 % used, warned at 90
    ],
)  # fmt: skip
def test_each_limit_is_ok_then_warning_then_tripped(
    limits: RiskLimits,
    statuses: list[tuple[float, float]],
    limit: RiskLimit,
    state: LimitState,
    trip_below: float,
) -> None:
    status = state_after(limits, *statuses)[limit]
    assert (status.state, status.trip_below) == (state, pytest.approx(trip_below))


def test_the_trip_names_the_limit_its_value_and_the_anchor() -> None:
    limits = RiskLimits(daily_loss_money=500.0, equity_floor=9_000.0)
    statuses = state_after(limits, (10_000, 10_000), (10_000, 8_900))
    trip = first_trip(list(statuses.values()))
    assert trip is not None
    assert (trip.limit, trip.value, trip.threshold, trip.anchor) == (
        RiskLimit.DAILY_LOSS_MONEY,
        1_100.0,
        500.0,
        10_000.0,
    )
    assert statuses[RiskLimit.EQUITY_FLOOR].state is LimitState.TRIPPED
    assert trip.used_pct == 220.0


def test_no_limit_set_means_nothing_is_measured() -> None:
    assert state_after(RiskLimits(), (10_000, 5_000)) == {}


# ---- the limits as a trader sets them ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"daily_loss_pct": 0}', "daily_loss_pct"),
        ('{"daily_loss_pct": 101}', "daily_loss_pct"),
        ('{"daily_loss_money": -5}', "daily_loss_money"),
        ('{"equity_floor": "9000"}', "equity_floor"),  # strict: no strings for numbers
        ('{"reset_time": "24:00"}', "reset_time"),
        ('{"reset_time": "9:30"}', "reset_time"),
        ('{"reset_tz": "Mars/Olympus"}', "reset_tz"),
        ('{"reset_tz": "../../etc/passwd"}', "reset_tz"),
        ('{"drawdown_mode": "peak"}', "drawdown_mode"),
        ('{"max_open_trades": 0}', "max_open_trades"),
        ('{"warn_at_pct": 100}', "warn_at_pct"),
        ('{"daily_los_pct": 5}', "daily_los_pct"),  # a typo is refused, not ignored
        ('{"daily_loss_pct": 5, "daily_loss_of": "initial"}', ""),  # needs initial_balance
    ],
)
def test_bad_limits_are_refused_naming_the_field(body: str, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RiskLimits.model_validate_json(body)
    locations = {".".join(str(p) for p in e["loc"]) for e in caught.value.errors()}
    assert field in locations


def test_nan_is_not_a_limit() -> None:
    with pytest.raises(ValidationError):
        RiskLimits(daily_loss_money=float("nan"))


def test_an_ftmo_style_configuration_is_accepted() -> None:
    limits = RiskLimits.model_validate_json(
        '{"daily_loss_pct": 5, "daily_loss_of": "initial", "initial_balance": 100000,'
        ' "equity_floor": 90000, "reset_time": "00:00", "reset_tz": "Europe/Prague"}'
    )
    assert limits.flatten_on_breach is True and limits.warn_at_pct == 80
