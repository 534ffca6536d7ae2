"""The desktop agent's protocol (/ws/agent) and trading signals.

Position and account fields follow the MetaTrader5 package's names (`positions_get`,
`account_info`, `terminal_info`), except that `type` is "buy"/"sell" rather than 0/1 and an
absent SL/TP is null rather than 0.0.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from signalosd.models.api import REQUEST_CONFIG, Command, Mode, Side, SignalStatus
from signalosd.strict_json import is_finite_tree

# Newer agents may send more fields. No float field of a report takes NaN or Infinity (a JSON
# `1e999` included): they would be stored, then served as JSON that browsers refuse.
_REPORT = ConfigDict(extra="ignore", strict=False, allow_inf_nan=False)
Symbol = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._#+-]+$")
Lots = Field(gt=0, le=1000, allow_inf_nan=False)
Level = Field(default=None, gt=0, allow_inf_nan=False)

# Bounds of what a broker can report: beyond them a number is an error, not a position.
MONEY_MAX = 1e15  # balances, profits, swaps: account currency units
PRICE_MAX = 1e9
VOLUME_MAX = 1e9  # lots (or units, for brokers that count those)
INT64_MAX = 2**63 - 1  # SQLite's integers (tickets)
Money = Field(default=0.0, ge=-MONEY_MAX, le=MONEY_MAX)
Timestamp = Field(
    default=None,
    max_length=40,
    pattern=r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$",
)
# How long an agent keeps the ids of the commands it executed (its at-most-once record), when
# its hello does not say: the daemon never sends a command older than that.
DEFAULT_JOURNAL_KEEP_S = 30 * 86400.0


def _finite_payload(value: dict[str, Any]) -> dict[str, Any]:
    if not is_finite_tree(value):
        raise ValueError(
            "must hold only finite numbers (no NaN or Infinity), nested at most 32 deep"
        )
    return value


FinitePayload = Annotated[dict[str, Any], AfterValidator(_finite_payload)]


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
    status: Literal[SignalStatus.ACCEPTED, SignalStatus.SKIPPED]  # the CLI lists these
    reason: str | None
    command_id: str | None
    trade_id: int | None
    created_at: str


class SignalReply(BaseModel):
    """202 with the queued entry; 200 when skipped or a duplicate of an earlier signal."""

    signal: Signal
    command: Command | None = None
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
    # Seconds the agent keeps the ids of commands it executed (older agents: the default).
    journal_keep_s: float | None = Field(default=None, gt=0, le=10 * 365 * 86400.0)


class AgentState(BaseModel):
    """`agent_state`: the agent's own trading mode and the halt generation it knows, sent
    after each `welcome` and whenever they change; plus its clock offset to the daemon."""

    model_config = _REPORT
    mode: Mode
    halt_gen: int = Field(ge=0, le=INT64_MAX)
    clock_offset_s: float | None = Field(default=None, ge=-1e9, le=1e9)


class Position(BaseModel):
    """One open (or just closed) position as the broker reports it."""

    model_config = _REPORT
    ticket: int = Field(gt=0, le=INT64_MAX)
    symbol: str = Symbol
    type: Side
    volume: float = Field(ge=0, le=VOLUME_MAX)
    price_open: float = Field(gt=0, le=PRICE_MAX)
    price_current: float | None = Field(default=None, gt=0, le=PRICE_MAX)
    sl: float | None = Field(default=None, gt=0, le=PRICE_MAX)
    tp: float | None = Field(default=None, gt=0, le=PRICE_MAX)
    profit: float = Money
    swap: float = Money
    time: str | None = Timestamp  # opening time, ISO 8601 UTC
    comment: str | None = Field(default=None, max_length=64)
    volume_min: float | None = Field(default=None, gt=0, le=VOLUME_MAX)
    volume_step: float | None = Field(default=None, gt=0, le=VOLUME_MAX)
    trade_id: int | None = Field(default=None, gt=0, le=INT64_MAX)  # when the agent knows it


class TradeUpdate(Position):
    """`trade_update`: a position opened, changed or closed at the broker."""

    status: Literal["open", "closed"] = "open"
    closed_at: str | None = Timestamp
    close_price: float | None = Field(default=None, gt=0, le=PRICE_MAX)
    close_reason: str | None = Field(default=None, max_length=200)


class AccountStatus(BaseModel):
    """`mt5_status_update` (account_info + terminal_info)."""

    model_config = _REPORT
    balance: float = Field(ge=-MONEY_MAX, le=MONEY_MAX)
    equity: float = Field(ge=-MONEY_MAX, le=MONEY_MAX)
    margin: float = Money
    margin_free: float = Money
    margin_level: float | None = Field(default=None, ge=0, le=1e12)  # percent
    profit: float = Money
    connected: bool = True
    trade_allowed: bool = True
    ping_ms: float | None = Field(default=None, ge=0, le=1e7)
    server: str | None = Field(default=None, max_length=128)
    login: int | str | None = None
    currency: str | None = Field(default=None, max_length=16)
    leverage: int | None = Field(default=None, ge=0, le=1_000_000)


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
    retcode: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
    data: FinitePayload = Field(default_factory=dict)


class AgentAck(BaseModel):
    model_config = _REPORT
    messageId: str = Field(min_length=1, max_length=64)  # the seed's field name
