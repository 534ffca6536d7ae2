"""What the agent needs from a broker, whether the built-in paper broker or MetaTrader 5.

Brokers are synchronous (the MetaTrader5 package is); the agent runs them off the event loop.
Every failure is a `BrokerError` with a sentence for the operator and, where the broker has
one, its return code (MT5 `TRADE_RETCODE_*`), so the daemon can show why a command failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from signalosd.models import Side

# MT5 trade return codes the agent and the paper broker use (MetaTrader5 TRADE_RETCODE_*).
RETCODE_DONE = 10009
RETCODE_REQUOTE = 10004
RETCODE_REJECT = 10006
RETCODE_INVALID = 10013
RETCODE_INVALID_VOLUME = 10014
RETCODE_INVALID_PRICE = 10015
RETCODE_INVALID_STOPS = 10016
RETCODE_TRADE_DISABLED = 10017
RETCODE_MARKET_CLOSED = 10018
RETCODE_NO_MONEY = 10019
RETCODE_POSITION_CLOSED = 10036


class BrokerError(Exception):
    """A refused or failed broker operation."""

    def __init__(self, message: str, retcode: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retcode = retcode


@dataclass(frozen=True)
class SymbolSpec:
    name: str
    digits: int
    point: float
    contract_size: float
    volume_min: float
    volume_step: float
    volume_max: float
    stops_level: int = 0  # minimum SL/TP distance from price, in points


@dataclass(frozen=True)
class Quote:
    symbol: str
    bid: float
    ask: float
    time: str  # ISO 8601 UTC


@dataclass
class BrokerPosition:
    """An open position (MT5 `positions_get` names; `type` as Side; no SL/TP is None)."""

    ticket: int
    symbol: str
    type: Side
    volume: float
    price_open: float
    price_current: float
    sl: float | None
    tp: float | None
    profit: float
    swap: float
    time: str  # opening time, ISO 8601 UTC
    comment: str = ""
    volume_min: float = 0.01
    volume_step: float = 0.01


@dataclass(frozen=True)
class Deal:
    """The result of a market order: what was filled, at what price."""

    ticket: int  # the position's ticket
    symbol: str
    type: Side  # the side of the position (not of the closing deal)
    volume: float
    price: float
    profit: float = 0.0  # realised, for closing deals
    retcode: int = RETCODE_DONE


@dataclass(frozen=True)
class ClosedPosition:
    """A position the broker closed by itself (SL or TP hit, stop out)."""

    position: BrokerPosition
    price: float
    profit: float
    time: str
    reason: str  # "sl", "tp", "stop_out", …


@dataclass
class AccountInfo:
    """`account_info` + `terminal_info` fields the daemon shows."""

    balance: float
    equity: float
    margin: float
    margin_free: float
    margin_level: float | None
    profit: float
    connected: bool
    trade_allowed: bool
    ping_ms: float | None
    server: str
    login: int
    currency: str = "USD"
    leverage: int = 100
    extra: dict[str, object] = field(default_factory=dict)


class Broker(Protocol):
    name: str  # "paper" or "mt5"

    def connect(self) -> None:
        """Open the session (MT5: initialize + login). Raises BrokerError."""

    def shutdown(self) -> None: ...

    def account(self) -> AccountInfo: ...

    def symbol(self, symbol: str) -> SymbolSpec:
        """Raises BrokerError for an unknown symbol."""

    def quote(self, symbol: str) -> Quote: ...

    def positions(self) -> list[BrokerPosition]: ...

    def open_position(
        self,
        symbol: str,
        side: Side,
        volume: float,
        sl: float | None,
        tp: float | None,
        comment: str = "",
    ) -> Deal:
        """A market order opening a position."""

    def close_position(self, ticket: int, volume: float | None = None) -> Deal:
        """Close the position, or `volume` lots of it (rounded by the caller to the step)."""

    def modify_position(self, ticket: int, sl: float | None, tp: float | None) -> None:
        """Set SL and TP at the broker (None removes a level). Validates them like MT5."""

    def poll(self) -> list[ClosedPosition]:
        """Advance (paper: move prices, fire SL/TP) and return positions the broker closed
        by itself since the last poll."""
