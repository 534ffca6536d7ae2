"""Wire models shared by the daemon, the CLI and the agent. No I/O here.

Request models are strict and forbid unknown fields: a typo such as `{"close-all": true}` must be
refused, not silently ignored, because the caller would believe it flattened the account.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from signalosd.models.words import ActorKind


class Mode(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    HALTED = "halted"


class Role(StrEnum):
    """viewer < operator < admin rank; `agent` (the desktop agent's WebSocket) and `metrics`
    (a Prometheus scraper: /metrics of every account and nothing else) stand apart."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    AGENT = "agent"
    ADMIN = "admin"
    METRICS = "metrics"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class TradeStatus(StrEnum):
    PENDING = "pending"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


class SignalStatus(StrEnum):
    """What became of a signal: an entry for the agent, or stored with the reason it was not."""

    ACCEPTED = "accepted"
    SKIPPED = "skipped"


class CommandType(StrEnum):
    OPEN_TRADE = "open_trade"
    CLOSE_TRADE = "close_trade"
    PARTIAL_CLOSE = "partial_close"
    MODIFY_TRADE = "modify_trade"
    TRAILING_STOP = "trailing_stop"
    EMERGENCY_STOP = "emergency_stop"
    PAUSE = "pause"
    RESUME = "resume"
    SET_STEALTH = "set_stealth"
    FORCE_SYNC = "force_sync"


class CommandStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    ACKED = "acked"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


TERMINAL_COMMAND_STATUSES = frozenset(
    {CommandStatus.SUCCEEDED, CommandStatus.FAILED, CommandStatus.EXPIRED, CommandStatus.CANCELLED}
)


class Source(StrEnum):
    API = "api"
    CLI = "cli"
    CRON = "cron"
    WS = "ws"
    DASHBOARD = "dashboard"
    LOCAL = "local"


REQUEST_CONFIG = ConfigDict(extra="forbid", strict=True)
Reason = Field(default=None, max_length=500)


# ---- requests -------------------------------------------------------------------------------


class EmergencyStopRequest(BaseModel):
    model_config = REQUEST_CONFIG
    reason: str | None = Reason
    close_all: bool = False


class PauseRequest(BaseModel):
    model_config = REQUEST_CONFIG
    reason: str | None = Reason


class ResumeRequest(BaseModel):
    model_config = REQUEST_CONFIG
    confirm_halt: bool = False
    reason: str | None = Reason


class StealthRequest(BaseModel):
    """`{enabled}`, the seed's `{stealthMode}`, or no body at all (toggle)."""

    model_config = REQUEST_CONFIG
    enabled: bool | None = None
    stealthMode: bool | None = None

    @model_validator(mode="after")
    def _one_spelling(self) -> StealthRequest:
        if self.enabled is not None and self.stealthMode is not None:
            raise ValueError("give either 'enabled' or 'stealthMode', not both")
        return self

    def target(self) -> bool | None:
        return self.enabled if self.enabled is not None else self.stealthMode


Price = Field(default=None, gt=0, allow_inf_nan=False)


class PartialCloseRequest(BaseModel):
    """`{fraction}` (0-1), `{volume}` (lots) or the seed's `{percentage}` (0-100); default half."""

    model_config = REQUEST_CONFIG
    fraction: float | None = Field(default=None, gt=0, lt=1, allow_inf_nan=False)
    volume: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    percentage: float | None = Field(default=None, gt=0, lt=100, allow_inf_nan=False)

    @model_validator(mode="after")
    def _at_most_one(self) -> PartialCloseRequest:
        given = [n for n in ("fraction", "volume", "percentage") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give only one of fraction, volume, percentage (got {given})")
        return self


class ModifyRequest(BaseModel):
    """`{sl, tp}` or the seed's `{stopLoss, takeProfit}`. Absent: unchanged; null: remove."""

    model_config = REQUEST_CONFIG
    sl: float | None = Price
    tp: float | None = Price
    stopLoss: float | None = Price
    takeProfit: float | None = Price

    @model_validator(mode="after")
    def _check(self) -> ModifyRequest:
        s = self.model_fields_set
        if {"sl", "stopLoss"} <= s or {"tp", "takeProfit"} <= s:
            raise ValueError("give each level once: sl or stopLoss, tp or takeProfit")
        if not s:
            raise ValueError("give at least one of sl, tp (null removes a level)")
        return self

    def changes(self) -> dict[str, float | None]:
        """Only the levels the caller named; a None value means "remove this level"."""
        s = self.model_fields_set
        out: dict[str, float | None] = {}
        if "sl" in s or "stopLoss" in s:
            out["sl"] = self.sl if "sl" in s else self.stopLoss
        if "tp" in s or "takeProfit" in s:
            out["tp"] = self.tp if "tp" in s else self.takeProfit
        return out


class TrailingStopRequest(BaseModel):
    model_config = REQUEST_CONFIG
    distance: float = Field(gt=0, allow_inf_nan=False)
    step: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _step_fits(self) -> TrailingStopRequest:
        if self.step is not None and self.step > self.distance:
            raise ValueError("step must not be larger than distance")
        return self


class EmptyRequest(BaseModel):
    model_config = REQUEST_CONFIG


# ---- replies --------------------------------------------------------------------------------


class Actor(BaseModel):
    """Who an event or a command names as its cause. Only the fields an actor has are stored
    (a system actor has no role or source): see `recorded`."""

    kind: ActorKind
    id: str | None = None
    label: str | None = None
    role: str | None = None
    source: str | None = None
    # An agent's WebSocket session (events it records); left out when None, so a dump of any
    # other actor keeps the keys it has always been stored with.
    session: str | None = Field(default=None, exclude_if=lambda v: v is None)

    def recorded(self) -> dict[str, Any]:
        """The actor as events and commands store it: the fields given, in this order."""
        return self.model_dump(mode="json", exclude_unset=True)


def system_actor(label: str) -> dict[str, Any]:
    """The daemon itself acting as `label` (delivery, expiry, housekeeping), as events store it:
    `{"kind":"system","id":null,"label":...}`, the shape the log has always had. Make each once,
    at import: the store encodes an actor once per transaction, by identity."""
    return Actor(kind=ActorKind.SYSTEM, id=None, label=label).recorded()


class TradingState(BaseModel):
    account: str
    mode: Mode
    stealth: bool
    reason: str | None
    since: str
    # Bumped by every emergency stop; every command carries the generation it was issued in.
    halt_gen: int
    changed: bool | None = None


class Trade(BaseModel):
    id: int
    account: str
    ticket: int | None
    symbol: str
    side: Side
    volume: float
    open_price: float | None
    current_price: float | None
    sl: float | None
    tp: float | None
    profit: float
    swap: float
    status: TradeStatus
    opened_at: str | None
    closed_at: str | None
    close_reason: str | None
    signal_id: int | None
    trailing: float | None
    volume_min: float
    volume_step: float
    updated_at: str


class Command(BaseModel):
    id: str
    account: str
    type: CommandType
    trade_id: int | None
    params: dict[str, Any]
    status: CommandStatus
    attempts: int
    created_at: str
    sent_at: str | None
    acked_at: str | None
    done_at: str | None
    expires_at: str | None
    result: dict[str, Any] | None
    issued_by: Actor
    halt_gen: int  # the account's halt generation when the command was issued


class Event(BaseModel):
    seq: int
    account: str | None
    type: str
    data: dict[str, Any]
    ts: str
    actor: Actor


class TradeList(BaseModel):
    trades: list[Trade]


class EventList(BaseModel):
    events: list[Event]
    last_seq: int


class CommandReply(BaseModel):
    command: Command
    message: str | None = None  # force-sync: the daemon's words for what happens next


class ControlReply(TradingState):
    """A mode or stealth change; `command` is present when the agent was sent one (202)."""

    command: Command | None = None
    message: str  # the daemon's own words for what happened, for a toast or a log line
    # Emergency stop only: the unfinished entries and resumes it cancelled (their ids).
    cancelled_commands: list[str] | None = None


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorReply(BaseModel):
    error: ErrorBody


class AgentHealth(BaseModel):
    """The agent part of the health: its session while connected (else what was stored of the
    last one), and what the agent last said of its own mode."""

    connected: bool
    last_seen: str | None
    session_id: str | None = None  # connected only
    agent_version: str | None = None
    broker: str | None = None
    login: int | str | None = None
    server: str | None = None
    connected_at: str | None = None  # connected only
    mode: Mode | None
    halt_gen: int | None
    mode_mismatch: bool
    clock_offset_s: float | None


class DbHealth(BaseModel):
    ok: bool
    last_seq: int | None = None  # the head of the whole log: admin only


class RiskHealth(BaseModel):
    """The risk guard in health: whether it guards the account, whether its data is stale
    (trades open, no account status for risk_stale_after_s), and a latched trip's limit."""

    guarded: bool
    stale: bool
    latched: str | None


class Health(BaseModel):
    """The account's health. `db.last_seq` (the head of the whole log) and `websocket_clients`
    (of every account) are process-wide: present for an admin token only."""

    status: str
    version: str
    account: str
    mode: Mode
    stealth: bool
    agent: AgentHealth
    mt5: dict[str, Any] | None  # the agent's last account status (models.AccountStatus)
    queues: dict[str, int]
    db: DbHealth
    risk: RiskHealth
    websocket_clients: int | None = None
    uptime_s: float
    # The daemon runs with --dev (or dev_mode = true): the dashboard shows its WebSocket tester.
    dev_mode: bool


class Probe(BaseModel):
    """GET /livez (`ok`) and /readyz (`ready`)."""

    status: str


class HistoryPoint(BaseModel):
    """One time bucket of the account history: its last sample's time, balance and equity,
    and the lowest and highest equity within it."""

    t: str
    balance: float
    equity: float
    equity_min: float
    equity_max: float


class AccountHistory(BaseModel):
    """GET /api/account/history: the buckets that hold samples, oldest first."""

    model_config = ConfigDict(populate_by_name=True)
    account: str
    from_: str = Field(alias="from")
    to: str
    bucket_s: float
    points: list[HistoryPoint]
