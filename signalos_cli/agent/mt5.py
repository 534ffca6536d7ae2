"""The MetaTrader 5 broker: a thin adapter over the `MetaTrader5` package.

The package exists for Windows only and talks to a running terminal, so it is imported
lazily in `connect()` (or injected, for tests with a fake module). Every failure becomes a
`BrokerError` with a sentence for the operator and, for trade requests, MT5's retcode.

MT5 closes SL/TP itself; `poll()` notices positions that disappeared and reads the closing
deal from the history to say at what price, for what profit and why.
"""

from __future__ import annotations

import importlib
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from signalos_cli.agent.broker import (
    RETCODE_DONE,
    RETCODE_INVALID,
    RETCODE_POSITION_CLOSED,
    RETCODE_TRADE_DISABLED,
    AccountInfo,
    BrokerError,
    BrokerPosition,
    ClosedPosition,
    Deal,
    Quote,
    SymbolSpec,
)
from signalos_cli.agent.broker_checks import check_close_volume, check_stops, check_volume
from signalos_cli.agent.mt5_codes import (
    CONSTANTS,
    DEFAULT_MAGIC,
    MISSING_PACKAGE,
    RES_S_OK,
    RETCODE_DONE_PARTIAL,
    RETCODE_NO_CHANGES,
    RETCODE_PLACED,
    RETCODE_PRICE_OFF,
    SYMBOL_FILLING_FOK,
    SYMBOL_FILLING_IOC,
    account_of,
    closed_from_deals,
    describe_retcode,
    level_or_zero,
    position_of,
    spec_of,
    unusable,
)
from signalosd.clock import iso
from signalosd.models import Side

log = logging.getLogger(__name__)


class Mt5Broker:
    """`signalos agent --broker mt5`: trades through a MetaTrader 5 terminal on this machine."""

    name = "mt5"

    def __init__(
        self,
        login: int | str | None = None,
        password: str | None = None,
        server: str | None = None,
        path: str | None = None,
        *,
        module: Any = None,
        magic: int = DEFAULT_MAGIC,
        deviation: int = 20,
        time_offset_s: int = 0,
    ) -> None:
        """`module` replaces `import MetaTrader5` (tests). `deviation` is the accepted
        slippage in points. `time_offset_s` is the trade server's offset from UTC: MT5
        stamps positions and deals in server time, which many brokers keep at UTC+2/+3."""
        self._mt5 = module
        self._login = int(login) if login is not None else None
        self._password = password
        self._server = server
        self._path = path
        self.magic = magic
        self.deviation = deviation
        self._offset = time_offset_s
        self._lock = threading.RLock()
        self._specs: dict[str, tuple[float, float]] = {}  # symbol -> (volume_min, volume_step)
        self._known: dict[int, BrokerPosition] | None = None  # positions at the last look
        self._account_login: int | None = None

    # ---- session -----------------------------------------------------------------------------

    def connect(self) -> None:
        """initialize() (+ login() when credentials were given), then make sure this
        terminal and account may trade: the agent is useless if they cannot."""
        with self._lock:
            mt5 = self._module()
            ok = mt5.initialize(self._path) if self._path else mt5.initialize()
            if not ok:
                where = f" at {self._path}" if self._path else ""
                raise BrokerError(
                    f"cannot start MetaTrader 5{where}: initialize() failed: {self._error()}; "
                    "is the terminal installed and allowed to start in this Windows session?"
                )
            if self._login is not None:
                ok = mt5.login(self._login, password=self._password or "", server=self._server)
                if not ok:
                    err = self._error()
                    mt5.shutdown()
                    raise BrokerError(
                        f"login to account {self._login} on {self._server or 'the last server'} "
                        f"failed: {err}; check the account number, password and server name"
                    )
            terminal = mt5.terminal_info()
            account = mt5.account_info()
            problem = unusable(terminal, account, self._error)
            if problem is not None:
                mt5.shutdown()
                raise BrokerError(*problem)
            if account.margin_mode == self._k("ACCOUNT_MARGIN_MODE_RETAIL_NETTING"):
                log.warning(
                    "account %s is a netting account: one position per symbol", account.login
                )
            self._specs.clear()
            if self._known is None or account.login != self._account_login:
                # Same account after a reconnect: keep what poll() knew, so positions the
                # server closed meanwhile are still reported.
                self._known = {p.ticket: p for p in self._positions()}
            self._account_login = account.login

    def shutdown(self) -> None:
        with self._lock:
            if self._mt5 is not None:
                self._mt5.shutdown()

    def account(self) -> AccountInfo:
        with self._lock:
            mt5 = self._module()
            a, t = mt5.account_info(), mt5.terminal_info()
            if a is None or t is None:
                raise BrokerError(f"cannot read the MT5 account: {self._error()}")
            return account_of(a, t)

    # ---- market data -------------------------------------------------------------------------

    def symbol(self, symbol: str) -> SymbolSpec:
        with self._lock:
            return spec_of(self._info(symbol))

    def quote(self, symbol: str) -> Quote:
        with self._lock:
            tick = self._tick(symbol)
            return Quote(symbol, tick.bid, tick.ask, self._iso(tick.time_msc / 1000.0))

    def positions(self) -> list[BrokerPosition]:
        with self._lock:
            found = self._positions()
            if self._known is not None:
                self._known.update({p.ticket: p for p in found})
            return found

    # ---- trading -----------------------------------------------------------------------------

    def open_position(
        self,
        symbol: str,
        side: Side,
        volume: float,
        sl: float | None,
        tp: float | None,
        comment: str = "",
    ) -> Deal:
        with self._lock:
            info = self._info(symbol)
            self._check_trade_mode(info, side)
            spec = spec_of(info)
            lots = check_volume(spec, volume)
            tick = self._tick(symbol)
            check_stops(spec, side, tick.bid, tick.ask, sl, tp)
            buy = side is Side.BUY
            price = tick.ask if buy else tick.bid
            request = self._deal_request(info, buy, lots, price, comment)
            request.update(sl=level_or_zero(sl, info.digits), tp=level_or_zero(tp, info.digits))
            result = self._send(request, (RETCODE_DONE, RETCODE_DONE_PARTIAL, RETCODE_PLACED))
            filled = result.volume or lots
            price = result.price or price
            ticket = int(result.order)  # a hedging account's position ticket is its order's
            if self._known is not None:  # so poll() notices if it is closed before it looks
                self._known[ticket] = BrokerPosition(
                    ticket=ticket,
                    symbol=symbol,
                    type=side,
                    volume=filled,
                    price_open=price,
                    price_current=price,
                    sl=sl,
                    tp=tp,
                    profit=0.0,
                    swap=0.0,
                    time=iso(datetime.now(UTC)),
                    comment=comment[:31],
                    volume_min=spec.volume_min,
                    volume_step=spec.volume_step,
                )
            return Deal(ticket, symbol, side, filled, price, retcode=result.retcode)

    def close_position(self, ticket: int, volume: float | None = None) -> Deal:
        """An opposite market deal on the position (`position=ticket`), whole or partial."""
        with self._lock:
            pos = self._position(ticket)
            info = self._info(pos.symbol)
            lots = check_close_volume(spec_of(info), pos.volume, volume)
            tick = self._tick(pos.symbol)
            buy = pos.type is Side.BUY
            price = tick.bid if buy else tick.ask
            request = self._deal_request(info, not buy, lots, price, "close")
            request["position"] = ticket
            result = self._send(request, (RETCODE_DONE, RETCODE_DONE_PARTIAL, RETCODE_PLACED))
            closed = result.volume or lots
            profit = self._deal_profit(result.order, pos.profit * closed / pos.volume)
            if self._known is not None:
                if closed >= pos.volume - 1e-9:
                    self._known.pop(ticket, None)
                elif ticket in self._known:
                    self._known[ticket].volume = round(pos.volume - closed, 8)
            return Deal(
                ticket, pos.symbol, pos.type, closed, result.price or price, profit, result.retcode
            )

    def modify_position(self, ticket: int, sl: float | None, tp: float | None) -> None:
        """TRADE_ACTION_SLTP. Setting the levels a position already has is not an error."""
        with self._lock:
            pos = self._position(ticket)
            info = self._info(pos.symbol)
            tick = self._tick(pos.symbol)
            check_stops(spec_of(info), pos.type, tick.bid, tick.ask, sl, tp)
            request = {
                "action": self._k("TRADE_ACTION_SLTP"),
                "symbol": pos.symbol,
                "position": ticket,
                "sl": level_or_zero(sl, info.digits),
                "tp": level_or_zero(tp, info.digits),
                "magic": self.magic,
            }
            self._send(request, (RETCODE_DONE, RETCODE_PLACED, RETCODE_NO_CHANGES))

    def poll(self) -> list[ClosedPosition]:
        """Positions gone since the last look (closed by the server, or in the terminal)."""
        with self._lock:
            current = {p.ticket: p for p in self._positions()}
            known, self._known = self._known, current
            if known is None:
                return []
            return [self._gone(p) for t, p in known.items() if t not in current]

    # ---- internals ---------------------------------------------------------------------------

    def _module(self) -> Any:
        if self._mt5 is None:
            try:
                self._mt5 = importlib.import_module("MetaTrader5")
            except ImportError as exc:
                raise BrokerError(MISSING_PACKAGE) from exc
        return self._mt5

    def _k(self, name: str) -> int:
        return int(getattr(self._module(), name, CONSTANTS[name]))

    def _error(self) -> str:
        try:
            code, text = self._module().last_error()
        except Exception:  # a broken terminal must not hide the original failure
            return "unknown error"
        return f"{text} ({code})"

    def _info(self, symbol: str) -> Any:
        mt5 = self._module()
        info = mt5.symbol_info(symbol) if mt5.symbol_select(symbol, True) else None
        if info is None:
            raise BrokerError(
                f"unknown symbol {symbol!r}: this MT5 server does not offer it ({self._error()})",
                RETCODE_INVALID,
            )
        self._specs[symbol] = (info.volume_min, info.volume_step)
        return info

    def _tick(self, symbol: str) -> Any:
        tick = self._module().symbol_info_tick(symbol)
        if tick is None or not tick.bid or not tick.ask:
            raise BrokerError(f"no price for {symbol}: {self._error()}", RETCODE_PRICE_OFF)
        return tick

    def _check_trade_mode(self, info: Any, side: Side) -> None:
        mode = getattr(info, "trade_mode", 4)  # SYMBOL_TRADE_MODE_FULL
        refused = {
            0: (f"trading {info.name} is disabled", RETCODE_TRADE_DISABLED),
            3: (f"{info.name} is close-only: no new positions", 10044),
            1: (f"{info.name} is long-only", 10042) if side is Side.SELL else None,
            2: (f"{info.name} is short-only", 10043) if side is Side.BUY else None,
        }.get(mode)
        if refused is not None:
            raise BrokerError(*refused)

    def _filling(self, info: Any) -> int:
        """The filling policy the symbol allows: FOK (all or nothing) when it can, else IOC,
        else RETURN (always allowed in market and exchange execution)."""
        flags = int(getattr(info, "filling_mode", 0))
        if flags & SYMBOL_FILLING_FOK:
            return self._k("ORDER_FILLING_FOK")
        if flags & SYMBOL_FILLING_IOC:
            return self._k("ORDER_FILLING_IOC")
        return self._k("ORDER_FILLING_RETURN")

    def _deal_request(
        self, info: Any, buy: bool, volume: float, price: float, comment: str
    ) -> dict[str, Any]:
        return {
            "action": self._k("TRADE_ACTION_DEAL"),
            "symbol": info.name,
            "volume": float(volume),
            "type": self._k("ORDER_TYPE_BUY" if buy else "ORDER_TYPE_SELL"),
            "price": price,
            "deviation": self.deviation,
            "magic": self.magic,
            "comment": comment[:31],  # MT5 refuses longer comments
            "type_time": self._k("ORDER_TIME_GTC"),
            "type_filling": self._filling(info),
        }

    def _send(self, request: dict[str, Any], ok: tuple[int, ...]) -> Any:
        mt5 = self._module()
        result = mt5.order_send(request)
        if result is None:
            raise BrokerError(f"order_send failed: {self._error()}")
        if result.retcode not in ok:
            message = describe_retcode(result.retcode, result.comment)
            if result.retcode == 10019 and "volume" in request and "position" not in request:
                message += self._margin_note(request)
            raise BrokerError(message, result.retcode)
        return result

    def _margin_note(self, request: dict[str, Any]) -> str:
        """': margin 120.50 needed, 80.00 free', when the terminal can tell."""
        mt5 = self._module()
        try:
            needed = mt5.order_calc_margin(
                request["type"], request["symbol"], request["volume"], request["price"]
            )
            free = mt5.account_info().margin_free
        except Exception:  # only a nicer message is lost
            return ""
        return "" if needed is None else f": margin {needed:.2f} needed, {free:.2f} free"

    def _positions(self) -> list[BrokerPosition]:
        raw = self._module().positions_get()
        if raw is None:
            if self._module().last_error()[0] != RES_S_OK:
                raise BrokerError(f"cannot list MT5 positions: {self._error()}")
            raw = ()
        return [self._map(p) for p in raw]

    def _position(self, ticket: int) -> BrokerPosition:
        mt5 = self._module()
        raw = mt5.positions_get(ticket=ticket)
        if raw is None and mt5.last_error()[0] != RES_S_OK:
            # a terminal that cannot answer must not look like a closed position
            raise BrokerError(f"cannot read MT5 position {ticket}: {self._error()}")
        if not raw:
            raise BrokerError(
                f"position {ticket} is not open (closed or unknown ticket)", RETCODE_POSITION_CLOSED
            )
        return self._map(raw[0])

    def _map(self, p: Any) -> BrokerPosition:
        if p.symbol not in self._specs:
            self._info(p.symbol)
        vmin, vstep = self._specs[p.symbol]
        return position_of(p, vmin, vstep, self._iso(p.time))

    def _deal_profit(self, order: int, fallback: float) -> float:
        deals = self._module().history_deals_get(ticket=order) if order else None
        return round(sum(d.profit for d in deals) if deals else fallback, 2)

    def _gone(self, last: BrokerPosition) -> ClosedPosition:
        """Why and how a position closed, from its closing deal (falls back to the last seen
        price and profit when the history does not have the deal yet)."""
        deals = self._module().history_deals_get(position=last.ticket) or ()
        return closed_from_deals(last, deals, self._k, self._iso)

    def _iso(self, epoch: float | None) -> str:
        if epoch is None:
            return iso(datetime.now(UTC))
        return iso(datetime.fromtimestamp(epoch - self._offset, UTC))
