"""The desktop agent's protocol (/ws/agent) and trading signals.

Position and account fields follow the MetaTrader5 package's names (`positions_get`,
`account_info`, `terminal_info`), except that `type` is "buy"/"sell" rather than 0/1 and an
absent SL/TP is null rather than 0.0.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .api import REQUEST_CONFIG, Side

_REPORT = ConfigDict(extra="ignore", strict=False)  # newer agents may send more fields
Symbol = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._#+-]+$")
Lots = Field(gt=0, le=1000, allow_inf_nan=False)
Level = Field(default=None, gt=0, allow_inf_nan=False)


class SignalRequest(BaseModel):
    """POST /api/signals. `external_id` makes ingestion idempotent per account."""

    model_config = REQUEST_CONFIG
    symbol: str = Symbol
    side: Side
    volume: float = Lots
    entry: float | None = Level
    sl: float | None = Level
    tp: list[float] = Field(default_factory=list, max_length=5)
    source: str = Field(default="api", min_length=1, max_length=64)
    external_id: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _levels(self) -> SignalRequest:
        if any(not (t > 0) or t != t or t == float("inf") for t in self.tp):
            raise ValueError("every tp must be a positive number")
        ref = self.entry
        if ref is not None:
            buy = self.side is Side.BUY
            if self.sl is not None and (self.sl >= ref if buy else self.sl <= ref):
                raise ValueError(
                    f"sl {self.sl} must be {'below' if buy else 'above'} the entry {ref} "
                    f"for a {self.side.value}"
                )
            for t in self.tp:
                if t <= ref if buy else t >= ref:
                    raise ValueError(
                        f"tp {t} must be {'above' if buy else 'below'} the entry {ref} "
                        f"for a {self.side.value}"
                    )
        return self


class Signal(BaseModel):
    id: int
    account: str
    symbol: str
    side: Side
    volume: float
    entry: float | None
    sl: float | None
    tp: list[float]
    source: str
    external_id: str | None
    status: Literal["accepted", "skipped"]
    reason: str | None
    command_id: str | None
    trade_id: int | None
    created_at: str


class SignalReply(BaseModel):
    """202 with the queued entry; 200 when skipped or a duplicate of an earlier signal."""

    signal: Signal
    command: dict[str, Any] | None = None
    duplicate: bool


class SignalList(BaseModel):
    signals: list[Signal]


# ---- /ws/agent: agent -> daemon --------------------------------------------------------------


class AgentHello(BaseModel):
    model_config = _REPORT
    agent_version: str = Field(max_length=64)
    broker: Literal["paper", "mt5"]
    login: int | str | None = None
    server: str | None = Field(default=None, max_length=128)


class Position(BaseModel):
    """One open (or just closed) position as the broker reports it."""

    model_config = _REPORT
    ticket: int = Field(gt=0)
    symbol: str = Symbol
    type: Side
    volume: float = Field(ge=0, allow_inf_nan=False)
    price_open: float = Field(gt=0, allow_inf_nan=False)
    price_current: float | None = Field(default=None, allow_inf_nan=False)
    sl: float | None = Level
    tp: float | None = Level
    profit: float = Field(default=0.0, allow_inf_nan=False)
    swap: float = Field(default=0.0, allow_inf_nan=False)
    time: str | None = None  # opening time, ISO 8601 UTC
    comment: str | None = Field(default=None, max_length=64)
    volume_min: float | None = Field(default=None, gt=0)
    volume_step: float | None = Field(default=None, gt=0)
    trade_id: int | None = None  # the daemon's trade id, when the agent knows it


class TradeUpdate(Position):
    """`trade_update`: a position opened, changed or closed at the broker."""

    status: Literal["open", "closed"] = "open"
    closed_at: str | None = None
    close_price: float | None = None
    close_reason: str | None = Field(default=None, max_length=200)


class AccountStatus(BaseModel):
    """`mt5_status_update` (account_info + terminal_info)."""

    model_config = _REPORT
    balance: float
    equity: float
    margin: float = 0.0
    margin_free: float = 0.0
    margin_level: float | None = None
    profit: float = 0.0
    connected: bool = True
    trade_allowed: bool = True
    ping_ms: float | None = None
    server: str | None = None
    login: int | str | None = None
    currency: str | None = None
    leverage: int | None = None


class SyncSnapshot(BaseModel):
    """`sync_snapshot`: every open position and the account, for reconciliation."""

    model_config = _REPORT
    positions: list[Position] = Field(max_length=10_000)
    account: AccountStatus | None = None


class CommandResult(BaseModel):
    """`command_result`: the outcome of executing one command (or its stored outcome)."""

    model_config = _REPORT
    command_id: str = Field(min_length=1, max_length=64)
    ok: bool
    error: str | None = Field(default=None, max_length=500)
    retcode: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class AgentAck(BaseModel):
    model_config = _REPORT
    messageId: str = Field(min_length=1, max_length=64)  # the seed's field name
