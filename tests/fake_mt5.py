"""A fake `MetaTrader5` module for the adapter's tests: the functions and constants
`signalos_cli.agent.mt5` uses, over an in-memory hedging account.

Switches make it fail the way a terminal does: `init_error` (initialize() fails),
`login_error`, `trade_allowed = False`, and `fail_retcode` (every order_send answers that
retcode: 10004 requote, 10016 invalid stops, 10018 market closed, 10019 no money, ...).
Every request dict order_send received is kept in `requests`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

T0 = 1_767_600_000  # 2026-01-05T08:00:00Z


class TerminalInfo(NamedTuple):
    connected: bool
    trade_allowed: bool
    ping_last: int  # microseconds
    company: str = "Fake Broker Ltd"
    name: str = "MetaTrader 5"
    path: str = r"C:\Program Files\MetaTrader 5"


class AccountInfo(NamedTuple):
    login: int
    server: str
    balance: float
    equity: float
    margin: float
    margin_free: float
    margin_level: float
    profit: float
    currency: str = "USD"
    leverage: int = 100
    trade_allowed: bool = True
    trade_expert: bool = True
    margin_mode: int = 2  # ACCOUNT_MARGIN_MODE_RETAIL_HEDGING


class SymbolInfo(NamedTuple):
    name: str
    digits: int
    point: float
    trade_contract_size: float
    volume_min: float
    volume_max: float
    volume_step: float
    trade_stops_level: int
    filling_mode: int  # bitmask: 1 FOK, 2 IOC
    trade_mode: int = 4  # SYMBOL_TRADE_MODE_FULL
    visible: bool = True


class Tick(NamedTuple):
    time: int
    bid: float
    ask: float
    last: float
    volume: int
    time_msc: int


class TradePosition(NamedTuple):
    ticket: int
    time: int
    time_msc: int
    type: int
    magic: int
    identifier: int
    reason: int
    volume: float
    price_open: float
    sl: float
    tp: float
    price_current: float
    swap: float
    profit: float
    symbol: str
    comment: str


class OrderSendResult(NamedTuple):
    retcode: int
    deal: int
    order: int
    volume: float
    price: float
    bid: float
    ask: float
    comment: str
    request_id: int
    retcode_external: int
    request: Any


class TradeDeal(NamedTuple):
    ticket: int
    order: int
    time: int
    time_msc: int
    type: int
    entry: int
    magic: int
    position_id: int
    reason: int
    volume: float
    price: float
    commission: float
    swap: float
    profit: float
    fee: float
    symbol: str
    comment: str


COMMENTS = {
    10004: "Requote",
    10009: "Request executed",
    10016: "Invalid stops",
    10018: "Market closed",
    10019: "No money",
    10025: "No changes",
    10030: "Unsupported filling mode",
}


class FakeMt5:
    TRADE_ACTION_DEAL = 1
    TRADE_ACTION_SLTP = 6
    ORDER_TYPE_BUY = 0
    ORDER_TYPE_SELL = 1
    POSITION_TYPE_BUY = 0
    POSITION_TYPE_SELL = 1
    ORDER_FILLING_FOK = 0
    ORDER_FILLING_IOC = 1
    ORDER_FILLING_RETURN = 2
    ORDER_FILLING_BOC = 3
    ORDER_TIME_GTC = 0
    DEAL_TYPE_BUY = 0
    DEAL_TYPE_SELL = 1
    DEAL_ENTRY_IN = 0
    DEAL_ENTRY_OUT = 1
    DEAL_ENTRY_INOUT = 2
    DEAL_ENTRY_OUT_BY = 3
    DEAL_REASON_CLIENT = 0
    DEAL_REASON_MOBILE = 1
    DEAL_REASON_WEB = 2
    DEAL_REASON_EXPERT = 3
    DEAL_REASON_SL = 4
    DEAL_REASON_TP = 5
    DEAL_REASON_SO = 6
    ACCOUNT_MARGIN_MODE_RETAIL_NETTING = 0
    ACCOUNT_MARGIN_MODE_RETAIL_HEDGING = 2
    TRADE_RETCODE_REQUOTE = 10004
    TRADE_RETCODE_DONE = 10009
    TRADE_RETCODE_INVALID_STOPS = 10016
    TRADE_RETCODE_MARKET_CLOSED = 10018
    TRADE_RETCODE_NO_MONEY = 10019
    TRADE_RETCODE_NO_CHANGES = 10025
    TRADE_RETCODE_INVALID_FILL = 10030
    RES_S_OK = 1
    RES_E_FAIL = -1
    RES_E_AUTH_FAILED = -6

    def __init__(self) -> None:
        self.initialized = False
        self.init_error: tuple[int, str] | None = None
        self.login_error: tuple[int, str] | None = None
        self.fail_retcode: int | None = None
        self.trade_allowed = True
        self.account_trade_allowed = True
        self.margin_mode = 2
        self.ping_last = 35_000
        self.error: tuple[int, str] = (1, "Success")
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.requests: list[dict[str, Any]] = []
        self.balance = 10_000.0
        self.login_id = 0
        self.server = ""
        self.symbols = {
            "EURUSD": SymbolInfo("EURUSD", 5, 0.00001, 100_000, 0.01, 100.0, 0.01, 10, 1),
            "XAUUSD": SymbolInfo("XAUUSD", 2, 0.01, 100, 0.01, 50.0, 0.01, 50, 2),
            "US30": SymbolInfo("US30", 1, 0.1, 1, 0.1, 100.0, 0.01, 0, 0),
        }
        self.ticks = {
            "EURUSD": (1.08500, 1.08512),
            "XAUUSD": (2350.00, 2350.25),
            "US30": (39000.0, 39002.0),
        }
        self.positions: dict[int, TradePosition] = {}
        self.deals: list[TradeDeal] = []
        self._next = 5_000_001
        self.now = T0

    # ---- session -------------------------------------------------------------------------

    def _call(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))

    def initialize(self, *args: Any, **kwargs: Any) -> bool:
        self._call("initialize", *args, **kwargs)
        if self.init_error is not None:
            self.error = self.init_error
            return False
        self.initialized = True
        self.error = (1, "Success")
        return True

    def login(self, login: int, password: str = "", server: str | None = None, **kw: Any) -> bool:
        self._call("login", login, password=password, server=server, **kw)
        if self.login_error is not None:
            self.error = self.login_error
            return False
        self.login_id, self.server = login, server or ""
        return True

    def shutdown(self) -> None:
        self._call("shutdown")
        self.initialized = False

    def last_error(self) -> tuple[int, str]:
        return self.error

    def _ready(self) -> bool:
        if not self.initialized:
            self.error = (-10004, "No IPC connection")
        return self.initialized

    def terminal_info(self) -> TerminalInfo | None:
        if not self._ready():
            return None
        return TerminalInfo(True, self.trade_allowed, self.ping_last)

    def account_info(self) -> AccountInfo | None:
        if not self._ready():
            return None
        profit = round(sum(p.profit for p in self.positions.values()), 2)
        margin = round(
            sum(
                self.order_calc_margin(p.type, p.symbol, p.volume, p.price_open) or 0
                for p in self.positions.values()
            ),
            2,
        )
        equity = self.balance + profit
        return AccountInfo(
            self.login_id or 12345678,
            self.server or "FakeBroker-Demo",
            self.balance,
            equity,
            margin,
            equity - margin,
            equity / margin * 100 if margin else 0.0,
            profit,
            trade_allowed=self.account_trade_allowed,
            margin_mode=self.margin_mode,
        )

    # ---- market data ---------------------------------------------------------------------

    def symbol_select(self, symbol: str, enable: bool = True) -> bool:
        if symbol not in self.symbols:
            self.error = (-1, "Terminal: Call failed")
            return False
        return True

    def symbol_info(self, symbol: str) -> SymbolInfo | None:
        return self.symbols.get(symbol)

    def symbol_info_tick(self, symbol: str) -> Tick | None:
        if symbol not in self.ticks:
            return None
        bid, ask = self.ticks[symbol]
        return Tick(self.now, bid, ask, 0.0, 0, self.now * 1000)

    def order_calc_margin(self, action: int, symbol: str, volume: float, price: float) -> float:
        return volume * self.symbols[symbol].trade_contract_size * price / 100

    # ---- positions and history -----------------------------------------------------------

    def positions_get(
        self, symbol: str | None = None, ticket: int | None = None, **kw: Any
    ) -> tuple[TradePosition, ...] | None:
        if not self._ready():
            return None
        found = [self._marked(p) for p in self.positions.values()]
        if ticket is not None:
            found = [p for p in found if p.ticket == ticket]
        if symbol is not None:
            found = [p for p in found if p.symbol == symbol]
        return tuple(found)

    def history_deals_get(
        self, *args: Any, ticket: int | None = None, position: int | None = None, **kw: Any
    ) -> tuple[TradeDeal, ...]:
        deals = self.deals
        if ticket is not None:
            deals = [d for d in deals if d.order == ticket]
        if position is not None:
            deals = [d for d in deals if d.position_id == position]
        return tuple(deals)

    def _marked(self, p: TradePosition) -> TradePosition:
        bid, ask = self.ticks[p.symbol]
        current = bid if p.type == 0 else ask
        return p._replace(price_current=current, profit=self._profit(p, current, p.volume))

    def _profit(self, p: TradePosition, price: float, volume: float) -> float:
        diff = price - p.price_open if p.type == 0 else p.price_open - price
        return round(diff * volume * self.symbols[p.symbol].trade_contract_size, 2)

    def _id(self) -> int:
        self._next += 1
        return self._next

    def _deal(
        self,
        order: int,
        p: TradePosition,
        entry: int,
        volume: float,
        price: float,
        profit: float,
        reason: int = 3,
    ) -> TradeDeal:
        deal_type = p.type if entry == 0 else 1 - p.type
        deal = TradeDeal(
            self._id(),
            order,
            self.now,
            self.now * 1000,
            deal_type,
            entry,
            p.magic,
            p.ticket,
            reason,
            volume,
            price,
            0.0,
            0.0,
            profit,
            0.0,
            p.symbol,
            "",
        )
        self.deals.append(deal)
        return deal

    def close_by_server(self, ticket: int, reason: int, price: float | None = None) -> None:
        """The server closes a position by itself (SL, TP, stop out): no order_send."""
        p = self._marked(self.positions.pop(ticket))
        price = p.price_current if price is None else price
        profit = self._profit(p, price, p.volume)
        self.balance += profit
        self._deal(self._id(), p, 1, p.volume, price, profit, reason)

    # ---- trading -------------------------------------------------------------------------

    def _result(
        self,
        retcode: int,
        request: dict[str, Any],
        deal: int = 0,
        order: int = 0,
        volume: float = 0.0,
        price: float = 0.0,
    ) -> OrderSendResult:
        bid, ask = self.ticks.get(request.get("symbol", ""), (0.0, 0.0))
        return OrderSendResult(
            retcode, deal, order, volume, price, bid, ask, COMMENTS.get(retcode, ""), 1, 0, request
        )

    def order_send(self, request: dict[str, Any]) -> OrderSendResult | None:
        self.requests.append(dict(request))
        if not self._ready():
            return None
        if self.fail_retcode is not None:
            return self._result(self.fail_retcode, request)
        if request["action"] == self.TRADE_ACTION_SLTP:
            return self._sltp(request)
        symbol = self.symbols[request["symbol"]]
        allowed = {0: symbol.filling_mode & 1, 1: symbol.filling_mode & 2, 2: True}
        if not allowed.get(request["type_filling"], False):
            return self._result(10030, request)
        bid, ask = self.ticks[request["symbol"]]
        price = ask if request["type"] == 0 else bid
        order, volume = self._id(), request["volume"]
        if request.get("position"):
            p = self._marked(self.positions[request["position"]])
            profit = self._profit(p, price, volume)
            self.balance += profit
            rest = round(p.volume - volume, 8)
            if rest > 0:
                self.positions[p.ticket] = p._replace(volume=rest)
            else:
                del self.positions[p.ticket]
            deal = self._deal(order, p, 1, volume, price, profit)
        else:
            p = TradePosition(
                order,
                self.now,
                self.now * 1000,
                request["type"],
                request.get("magic", 0),
                order,
                3,
                volume,
                price,
                request.get("sl", 0.0),
                request.get("tp", 0.0),
                price,
                0.0,
                0.0,
                request["symbol"],
                request.get("comment", ""),
            )
            self.positions[order] = p
            deal = self._deal(order, p, 0, volume, price, 0.0)
        return self._result(10009, request, deal.ticket, order, volume, price)

    def _sltp(self, request: dict[str, Any]) -> OrderSendResult:
        p = self.positions[request["position"]]
        if (p.sl, p.tp) == (request["sl"], request["tp"]):
            return self._result(10025, request)
        self.positions[p.ticket] = p._replace(sl=request["sl"], tp=request["tp"])
        return self._result(10009, request, order=self._id())
