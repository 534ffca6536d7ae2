"""MetaTrader 5 vocabulary: constants, retcode sentences, and how MT5 records map to ours.

Kept apart from the adapter (`mt5.py`) so that the adapter reads as the sequence of calls it
makes to the terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from signalos_cli.agent.broker import (
    RETCODE_TRADE_DISABLED,
    AccountInfo,
    BrokerPosition,
    ClosedPosition,
    SymbolSpec,
)
from signalosd.models import Side

MISSING_PACKAGE = (
    "the MetaTrader5 package is not installed: it exists for Windows only; run the agent on "
    "the Windows machine with MT5, or use --broker paper"
)
DEFAULT_MAGIC = 515_105  # marks the agent's orders in the terminal's history
RETCODE_PLACED = 10008
RETCODE_DONE_PARTIAL = 10010
RETCODE_NO_CHANGES = 10025
RETCODE_CLIENT_DISABLES_AT = 10027
RETCODE_PRICE_OFF = 10021
RES_S_OK = 1  # last_error() code for "no error"

# symbol_info().filling_mode is a bitmask of these; the package exports only ORDER_FILLING_*.
SYMBOL_FILLING_FOK = 1
SYMBOL_FILLING_IOC = 2

# Values of the package's constants, used when a module (a fake, an old build) lacks one.
CONSTANTS = {
    "TRADE_ACTION_DEAL": 1,
    "TRADE_ACTION_SLTP": 6,
    "ORDER_TYPE_BUY": 0,
    "ORDER_TYPE_SELL": 1,
    "ORDER_FILLING_FOK": 0,
    "ORDER_FILLING_IOC": 1,
    "ORDER_FILLING_RETURN": 2,
    "ORDER_TIME_GTC": 0,
    "DEAL_ENTRY_OUT": 1,
    "DEAL_ENTRY_OUT_BY": 3,
    "DEAL_REASON_SL": 4,
    "DEAL_REASON_TP": 5,
    "DEAL_REASON_SO": 6,
    "ACCOUNT_MARGIN_MODE_RETAIL_NETTING": 0,
}

RETCODE_TEXT = {
    10004: "requote: the price changed, try again",
    10006: "the request was rejected",
    10007: "the request was cancelled",
    10011: "the request could not be processed",
    10012: "the request timed out",
    10013: "invalid request",
    10014: "invalid volume",
    10015: "invalid price",
    10016: "invalid stops (SL/TP too close to the price or on the wrong side)",
    10017: "trading is disabled for this account or symbol",
    10018: "the market is closed",
    10019: "not enough money",
    10020: "prices changed",
    10021: "no quotes to process the request",
    10024: "too many requests",
    10026: "algorithmic trading is disabled by the server",
    10027: "algorithmic trading is disabled in the terminal (the Algo Trading button)",
    10029: "the position is frozen (too close to the price to change)",
    10030: "unsupported filling mode",
    10031: "no connection to the trade server",
    10034: "the volume limit for this symbol is reached",
    10036: "the position is already closed",
    10040: "the limit of open positions is reached",
    10042: "only buys are allowed for this symbol",
    10043: "only sells are allowed for this symbol",
    10044: "only closing positions is allowed for this symbol",
}


def describe_retcode(retcode: int, comment: str = "") -> str:
    """A sentence for the operator: what the retcode means, plus the server's comment."""
    text = RETCODE_TEXT.get(retcode, "the trade server refused the request")
    return f"{text} (retcode {retcode}{': ' + comment if comment else ''})"


def position_of(p: Any, volume_min: float, volume_step: float, time: str) -> BrokerPosition:
    """A `positions_get` record as a BrokerPosition (0.0 SL/TP means none)."""
    return BrokerPosition(
        ticket=int(p.ticket),
        symbol=p.symbol,
        type=Side.BUY if p.type == 0 else Side.SELL,  # POSITION_TYPE_BUY / _SELL
        volume=p.volume,
        price_open=p.price_open,
        price_current=p.price_current,
        sl=p.sl or None,
        tp=p.tp or None,
        profit=p.profit,
        swap=p.swap,
        time=time,
        comment=p.comment,
        volume_min=volume_min,
        volume_step=volume_step,
    )


def closed_from_deals(
    last: BrokerPosition,
    deals: Iterable[Any],
    k: Callable[[str], int],
    to_iso: Callable[[float | None], str],
) -> ClosedPosition:
    """The close of `last` from its deals: the latest closing deal's price, profit and reason."""
    outs = [d for d in deals if d.entry in (k("DEAL_ENTRY_OUT"), k("DEAL_ENTRY_OUT_BY"))]
    if not outs:
        return ClosedPosition(last, last.price_current, last.profit, to_iso(None), "closed")
    deal = max(outs, key=lambda d: (d.time_msc, d.ticket))
    reasons = {
        k("DEAL_REASON_SL"): "sl",
        k("DEAL_REASON_TP"): "tp",
        k("DEAL_REASON_SO"): "stop_out",
        0: "manual",
        1: "manual",
        2: "manual",
        3: "expert",  # client, mobile, web, EA
    }
    return ClosedPosition(
        last,
        deal.price,
        deal.profit,
        to_iso(deal.time_msc / 1000.0),
        reasons.get(deal.reason, "closed"),
    )


def level_or_zero(level: float | None, digits: int) -> float:
    return 0.0 if level is None else round(level, digits)


def spec_of(info: Any) -> SymbolSpec:
    return SymbolSpec(
        name=info.name,
        digits=info.digits,
        point=info.point,
        contract_size=info.trade_contract_size,
        volume_min=info.volume_min,
        volume_step=info.volume_step,
        volume_max=info.volume_max,
        stops_level=info.trade_stops_level,
    )


def unusable(
    terminal: Any, account: Any, error: Callable[[], str]
) -> tuple[str, int | None] | None:
    """Why this terminal and account cannot be traded through (message, retcode), or None."""
    if terminal is None or account is None:
        return f"MetaTrader 5 is not logged in to an account: {error()}", None
    if not terminal.trade_allowed:
        return (
            "algorithmic trading is disabled in the MetaTrader 5 terminal: press 'Algo "
            "Trading' (or Tools > Options > Expert Advisors > Allow algorithmic trading)",
            RETCODE_CLIENT_DISABLES_AT,
        )
    if not account.trade_allowed:
        return (
            f"account {account.login} may not trade (logged in with the investor password?)",
            RETCODE_TRADE_DISABLED,
        )
    return None


def account_of(a: Any, t: Any) -> AccountInfo:
    """`account_info` + `terminal_info` as the AccountInfo the daemon shows."""
    return AccountInfo(
        balance=a.balance,
        equity=a.equity,
        margin=a.margin,
        margin_free=a.margin_free,
        margin_level=a.margin_level if a.margin else None,  # MT5 says 0.0 when flat
        profit=a.profit,
        connected=bool(t.connected),
        trade_allowed=bool(t.trade_allowed and a.trade_allowed),
        ping_ms=t.ping_last / 1000.0,  # ping_last is in microseconds
        server=a.server,
        login=a.login,
        currency=a.currency,
        leverage=a.leverage,
    )
