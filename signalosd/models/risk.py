"""The risk guard's words and its limits, as a trader sets them (docs/risk.md, issue 12).

A limit left out is off. The object is always given whole (`PUT /api/risk/limits`), so what is
stored is exactly what the trader last said; a bad field is refused by name and changes
nothing. No I/O here.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from signalosd import strict_json

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MONEY_MAX = 1e15  # as the agent's reports (models/agent.py)


class DailyAnchor(StrEnum):
    """What the day's loss is measured from, taken at each reset."""

    BALANCE = "balance"
    MAX_BALANCE_EQUITY = "max_balance_equity"  # the higher of balance and equity


class LossBase(StrEnum):
    """What `daily_loss_pct` is a percentage of."""

    ANCHOR = "anchor"
    INITIAL = "initial"  # `initial_balance`, the prop-firm convention


class DrawdownMode(StrEnum):
    """The peak a drawdown is measured from."""

    EQUITY_PEAK = "equity_peak"  # the highest equity ever seen
    EOD_BALANCE = "eod_balance"  # the highest end-of-day balance, never lowered


class RiskLimit(StrEnum):
    """One loss limit of the guard, as `GET /api/risk` and `risk_*` events name it."""

    DAILY_LOSS_MONEY = "daily_loss_money"
    DAILY_LOSS_PCT = "daily_loss_pct"
    MAX_DRAWDOWN_MONEY = "max_drawdown_money"
    MAX_DRAWDOWN_PCT = "max_drawdown_pct"
    EQUITY_FLOOR = "equity_floor"

    @property
    def is_daily(self) -> bool:
        """A daily limit's trip clears at the next reset; the others need a confirmed reset."""
        return self in (RiskLimit.DAILY_LOSS_MONEY, RiskLimit.DAILY_LOSS_PCT)


class LimitState(StrEnum):
    OK = "ok"
    WARNING = "warning"  # `warn_at_pct` of the limit used
    TRIPPED = "tripped"


Money = Field(default=None, gt=0, le=MONEY_MAX)
Percent = Field(default=None, gt=0, le=100)


class RiskLimits(BaseModel):
    """Per-account limits. Loss limits trip the guard (an emergency stop, flattening when
    `flatten_on_breach`); entry limits turn a signal into a skipped one before any command."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    daily_loss_pct: float | None = Percent
    daily_loss_money: float | None = Money
    daily_anchor: DailyAnchor = DailyAnchor.BALANCE
    daily_loss_of: LossBase = LossBase.ANCHOR
    initial_balance: float | None = Money
    reset_time: str = "00:00"
    reset_tz: str = "Europe/Prague"
    max_drawdown_pct: float | None = Percent
    max_drawdown_money: float | None = Money
    drawdown_mode: DrawdownMode = DrawdownMode.EQUITY_PEAK
    equity_floor: float | None = Money
    max_open_trades: int | None = Field(default=None, ge=1, le=10_000)
    max_volume_per_trade: float | None = Field(default=None, gt=0, le=1e9)
    max_trades_per_day: int | None = Field(default=None, ge=1, le=1_000_000)
    warn_at_pct: float = Field(default=80.0, gt=0, lt=100)
    flatten_on_breach: bool = True
    halt_on_stale: bool = False

    @field_validator("reset_time")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"expected a time of day as HH:MM, 00:00 to 23:59 (got {value!r})")
        return value

    @field_validator("reset_tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"expected an IANA time zone name such as Europe/Prague or UTC (got {value!r})"
            ) from None
        return value

    @model_validator(mode="after")
    def _initial_when_needed(self) -> RiskLimits:
        if (
            self.daily_loss_of is LossBase.INITIAL
            and self.daily_loss_pct is not None
            and self.initial_balance is None
        ):
            raise ValueError(
                "daily_loss_of 'initial' needs initial_balance (the account's starting balance)"
            )
        return self

    @classmethod
    def from_stored(cls, stored: dict[str, Any] | None) -> RiskLimits:
        """The limits the store kept (every limit off when never set), read the way a request
        is: through JSON, strictly, so a stored object is held to the same rules."""
        return cls() if stored is None else cls.model_validate_json(strict_json.dumps(stored))

    @property
    def reset_hour_minute(self) -> tuple[int, int]:
        hour, minute = self.reset_time.split(":")
        return int(hour), int(minute)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.reset_tz)


# ---- requests and replies of /api/risk (docs/api.md) ----------------------------------------


class RiskResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    confirm: bool = False  # must be true: a reset lets trading resume after a trip


class LatchView(BaseModel):
    limit: RiskLimit
    at: str
    value: float
    threshold: float
    clears: str  # "at the next reset" (a daily limit) or "by a confirmed reset"


class RiskDay(BaseModel):
    start: str | None
    next_reset: str
    anchor: float | None  # None from the reset until the day's first status
    anchor_at: str | None


class LossLimitView(BaseModel):
    limit: RiskLimit
    threshold: float  # as set: money, or a percentage
    trip_below: float  # the equity it trips below
    value: float  # the loss so far (the equity, for the floor)
    used_pct: float
    state: LimitState
    anchor: float  # what it is measured from: the day's anchor, the peak
    anchor_at: str | None


class EntryLimitsView(BaseModel):
    trades_today: int
    max_trades_per_day: int | None
    open_trades: int
    max_open_trades: int | None
    max_volume_per_trade: float | None


class RiskState(BaseModel):
    """`GET /api/risk`."""

    guarded: bool  # limits are set for the account
    limits: RiskLimits | None
    state: LimitState  # the worst of the loss limits (tripped while a trip is latched)
    latch: LatchView | None
    day: RiskDay | None
    equity: float | None
    equity_peak: float | None
    eod_balance_peak: float | None
    stale: bool  # positions open and no account status for risk_stale_after_s
    loss_limits: list[LossLimitView]
    entries: EntryLimitsView


class RiskChangeReply(RiskState):
    """`PUT /api/risk/limits`, `POST /api/risk/reset`: the state as committed."""

    changed: bool
    message: str
