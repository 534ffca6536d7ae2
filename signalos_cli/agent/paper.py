"""A simulated MT5 account, so the whole desk can be run and tested without MetaTrader 5.

It refuses what MT5 refuses (unknown symbol, bad volume, no money, bad stops, closed
ticket) with MT5's return codes, fills at the right side of the spread, realises profit in
USD, fires broker-side SL/TP (and stop out) when `poll()` moves prices, and optionally keeps
its state in a JSON file so an agent restart keeps its paper account.

Time comes from an injected clock and prices move only in `poll()`, so tests are
deterministic and never sleep.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from signalos_cli.agent.broker import (
    RETCODE_NO_MONEY,
    RETCODE_POSITION_CLOSED,
    AccountInfo,
    BrokerError,
    BrokerPosition,
    ClosedPosition,
    Deal,
    Quote,
    SymbolSpec,
)
from signalos_cli.agent.broker_checks import (
    check_close_volume,
    check_stops,
    check_volume,
    fmt_lots,
    fmt_price,
)
from signalos_cli.agent.paper_market import DEFAULT_SYMBOLS, Market, PaperSymbol
from signalosd.clock import iso
from signalosd.models import Side

log = logging.getLogger(__name__)

ClockFn = Callable[[], datetime | float]

FIRST_TICKET = 100_001
STOP_OUT_LEVEL = 50.0  # margin level (%) at which the broker closes the worst position
PRICE_SAVE_INTERVAL_S = 10.0  # price-only changes are saved at most this often
STATE_VERSION = 1


@dataclass
class _Position:
    ticket: int
    symbol: str
    side: Side
    volume: float
    price_open: float
    sl: float | None
    tp: float | None
    time: str
    comment: str = ""


class PaperBroker:
    """The built-in paper broker (`signalos agent --broker paper`)."""

    name = "paper"

    def __init__(
        self,
        seed: int = 0,
        clock: ClockFn | None = None,
        balance: float = 10_000.0,
        leverage: int = 100,
        symbols: dict[str, PaperSymbol] | None = None,
        state_path: str | os.PathLike[str] | None = None,
    ) -> None:
        """`clock` returns a UTC datetime or epoch seconds (default: the system clock).
        With `state_path`, an existing state file wins over `seed` and `balance`."""
        self._clock: ClockFn = clock or time.time
        self.leverage = leverage
        self._lock = threading.RLock()
        self._state_path = Path(state_path) if state_path is not None else None
        self._positions: dict[int, _Position] = {}
        self._next_ticket = FIRST_TICKET
        self._balance = float(balance)
        self._held: set[str] = set()  # set_price'd symbols: not walked at the next poll
        self._gapped: set[str] = set()  # set_price(gap=True): stops fill at the worse price
        self._connected = False
        self._saved_at = float("-inf")
        table = symbols if symbols is not None else DEFAULT_SYMBOLS
        state = self._read_state()
        if state is None:
            self._market = Market(table, seed)
            self._save()
        else:
            self._restore(state, table)

    # ---- Broker protocol ---------------------------------------------------------------------

    def connect(self) -> None:
        self._connected = True

    def shutdown(self) -> None:
        with self._lock:
            self._connected = False
            self._save()

    def account(self) -> AccountInfo:
        with self._lock:
            profit = round(sum(self._profit(p) for p in self._positions.values()), 2)
            margin = round(sum(self._margin(p) for p in self._positions.values()), 2)
            equity = round(self._balance + profit, 2)
            return AccountInfo(
                balance=round(self._balance, 2),
                equity=equity,
                margin=margin,
                margin_free=round(equity - margin, 2),
                margin_level=round(equity / margin * 100, 2) if margin > 0 else None,
                profit=profit,
                connected=self._connected,
                trade_allowed=True,
                ping_ms=0.0,
                server="SignalOS-Paper",
                login=0,
                currency="USD",
                leverage=self.leverage,
                extra={"stop_out_level": STOP_OUT_LEVEL, "steps": self._market.steps},
            )

    def symbol(self, symbol: str) -> SymbolSpec:
        return self._market.spec(symbol)

    def quote(self, symbol: str) -> Quote:
        with self._lock:
            return self._market.quote(symbol, iso(self._now()))

    def positions(self) -> list[BrokerPosition]:
        with self._lock:
            return [self._view(p) for p in sorted(self._positions.values(), key=_ticket)]

    def open_position(
        self,
        symbol: str,
        side: Side,
        volume: float,
        sl: float | None,
        tp: float | None,
        comment: str = "",
    ) -> Deal:
        """A market order: buys fill at the ask, sells at the bid."""
        with self._lock:
            spec = self._market.spec(symbol)
            lots = check_volume(spec, volume)
            bid, ask = self._market.bid_ask(symbol)
            check_stops(spec, side, bid, ask, sl, tp)
            price = ask if side is Side.BUY else bid
            needed = self._market.to_usd(symbol, lots * spec.contract_size * price) / self.leverage
            free = self.account().margin_free
            if needed > free:
                raise BrokerError(
                    f"not enough money: margin {needed:.2f} needed, {free:.2f} free "
                    f"({side.value} {fmt_lots(lots)} {symbol} at {fmt_price(spec, price)}, "
                    f"leverage 1:{self.leverage})",
                    RETCODE_NO_MONEY,
                )
            ticket = self._next_ticket
            self._next_ticket += 1
            self._positions[ticket] = _Position(
                ticket=ticket,
                symbol=symbol,
                side=side,
                volume=lots,
                price_open=price,
                sl=_level(spec, sl),
                tp=_level(spec, tp),
                time=iso(self._now()),
                comment=comment[:31],  # MT5's limit
            )
            self._save()
            return Deal(ticket=ticket, symbol=symbol, type=side, volume=lots, price=price)

    def close_position(self, ticket: int, volume: float | None = None) -> Deal:
        """Close at the bid (buy) or the ask (sell); profit goes into the balance."""
        with self._lock:
            pos = self._get(ticket)
            lots = check_close_volume(self._market.spec(pos.symbol), pos.volume, volume)
            price, profit = self._close(pos, lots, self._close_price(pos))
            self._save()
            return Deal(ticket, pos.symbol, pos.side, lots, price, profit)

    def modify_position(self, ticket: int, sl: float | None, tp: float | None) -> None:
        """Set SL/TP, validated against the current price like MT5 does."""
        with self._lock:
            pos = self._get(ticket)
            spec = self._market.spec(pos.symbol)
            bid, ask = self._market.bid_ask(pos.symbol)
            check_stops(spec, pos.side, bid, ask, sl, tp)
            pos.sl, pos.tp = _level(spec, sl), _level(spec, tp)
            self._save()

    def poll(self) -> list[ClosedPosition]:
        """One market step: move prices, then fire broker-side SL/TP and stop out."""
        with self._lock:
            gapped = self._gapped
            self._market.step(skip=self._held)
            self._held, self._gapped = set(), set()
            closed: list[ClosedPosition] = []
            for pos in sorted(self._positions.values(), key=_ticket):
                hit = self._triggered(pos, gap=pos.symbol in gapped)
                if hit is not None:
                    closed.append(self._closed(pos, *hit))
            while self._positions:
                acct = self.account()
                if acct.margin_level is None or acct.margin_level >= STOP_OUT_LEVEL:
                    break
                worst = min(self._positions.values(), key=self._profit)
                closed.append(self._closed(worst, self._close_price(worst), "stop_out"))
            if closed or self._now_s() - self._saved_at >= PRICE_SAVE_INTERVAL_S:
                self._save()
            return closed

    # ---- test and demo helpers ---------------------------------------------------------------

    def set_price(self, symbol: str, bid: float, *, gap: bool = False) -> None:
        """Put the bid at `bid` (ask = bid + spread) for a deterministic scenario. The next
        poll keeps it (no random step for this symbol) and checks SL/TP against it; with
        `gap=True` the market jumped there, so a stop crossed on the way fills at this worse
        price instead of at its level."""
        with self._lock:
            self._market.set_bid(symbol, bid)
            self._held.add(symbol)
            if gap:
                self._gapped.add(symbol)
            self._save()

    # ---- internals ---------------------------------------------------------------------------

    def _get(self, ticket: int) -> _Position:
        pos = self._positions.get(ticket)
        if pos is None:
            raise BrokerError(
                f"position {ticket} is not open (closed or unknown ticket)", RETCODE_POSITION_CLOSED
            )
        return pos

    def _close_price(self, pos: _Position) -> float:
        bid, ask = self._market.bid_ask(pos.symbol)
        return bid if pos.side is Side.BUY else ask

    def _profit(
        self, pos: _Position, price: float | None = None, volume: float | None = None
    ) -> float:
        close = self._close_price(pos) if price is None else price
        diff = close - pos.price_open if pos.side is Side.BUY else pos.price_open - close
        lots = pos.volume if volume is None else volume
        contract = self._market.symbols[pos.symbol].spec.contract_size
        return round(self._market.to_usd(pos.symbol, diff * lots * contract), 2)

    def _margin(self, pos: _Position) -> float:
        notional = pos.volume * self._market.symbols[pos.symbol].spec.contract_size
        return self._market.to_usd(pos.symbol, notional * self._close_price(pos)) / self.leverage

    def _close(self, pos: _Position, lots: float, price: float) -> tuple[float, float]:
        """Realise `lots` of the position at `price`; returns (price, profit)."""
        profit = self._profit(pos, price, lots)
        self._balance = round(self._balance + profit, 2)
        remaining = round(pos.volume - lots, 8)
        if remaining <= 0:
            del self._positions[pos.ticket]
        else:
            pos.volume = remaining
        return price, profit

    def _triggered(self, pos: _Position, gap: bool) -> tuple[float, str] | None:
        """(fill price, reason) when the price crossed the position's SL or TP. A crossing
        fills at the level; after a gap, at the worse of the level and the price."""
        price = self._close_price(pos)
        buy = pos.side is Side.BUY
        if pos.sl is not None and (price <= pos.sl if buy else price >= pos.sl):
            level, reason = pos.sl, "sl"
        elif pos.tp is not None and (price >= pos.tp if buy else price <= pos.tp):
            level, reason = pos.tp, "tp"
        else:
            return None
        if gap:
            level = min(level, price) if buy else max(level, price)
        return level, reason

    def _closed(self, pos: _Position, price: float, reason: str) -> ClosedPosition:
        view = self._view(pos)
        _, profit = self._close(pos, pos.volume, price)
        snapshot = replace(view, price_current=price, profit=profit)
        return ClosedPosition(snapshot, price, profit, iso(self._now()), reason)

    def _view(self, pos: _Position) -> BrokerPosition:
        spec = self._market.symbols[pos.symbol].spec
        return BrokerPosition(
            ticket=pos.ticket,
            symbol=pos.symbol,
            type=pos.side,
            volume=pos.volume,
            price_open=pos.price_open,
            price_current=self._close_price(pos),
            sl=pos.sl,
            tp=pos.tp,
            profit=self._profit(pos),
            swap=0.0,
            time=pos.time,
            comment=pos.comment,
            volume_min=spec.volume_min,
            volume_step=spec.volume_step,
        )

    def _now(self) -> datetime:
        now = self._clock()
        if isinstance(now, datetime):
            return now if now.tzinfo else now.replace(tzinfo=UTC)
        return datetime.fromtimestamp(now, UTC)

    def _now_s(self) -> float:
        return self._now().timestamp()

    # ---- persistence -------------------------------------------------------------------------

    def _read_state(self) -> dict[str, Any] | None:
        if self._state_path is None or not self._state_path.exists():
            return None
        try:
            state = json.loads(self._state_path.read_text(encoding="utf-8"))
            if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
                raise ValueError(f"expected a version {STATE_VERSION} paper account")
            return state
        except (OSError, ValueError) as exc:
            raise BrokerError(
                f"cannot read the paper account {self._state_path}: {exc} "
                "(move the file away to start a fresh account)"
            ) from exc

    def _restore(self, state: dict[str, Any], table: dict[str, PaperSymbol]) -> None:
        try:
            self._market = Market(
                table, int(state["seed"]), int(state["steps"]), dict(state["prices"])
            )
            self._balance = float(state["balance"])
            self._next_ticket = int(state["next_ticket"])
            for raw in state["positions"]:
                pos = _Position(**{**raw, "side": Side(raw["side"])})
                if pos.symbol not in table:
                    raise ValueError(f"position {pos.ticket} is on unknown symbol {pos.symbol}")
                self._positions[pos.ticket] = pos
        except (KeyError, TypeError, ValueError) as exc:
            raise BrokerError(
                f"cannot restore the paper account {self._state_path}: {exc!r}"
            ) from exc

    def _save(self) -> None:
        """Write the account atomically (temp file, fsync, rename): a crash mid-write
        leaves the previous state, never a torn file."""
        self._saved_at = self._now_s()
        if self._state_path is None:
            return
        state = {
            "version": STATE_VERSION,
            "saved_at": iso(self._now()),
            "seed": self._market.seed,
            "steps": self._market.steps,
            "balance": self._balance,
            "next_ticket": self._next_ticket,
            "prices": self._market.bids,
            "positions": [
                {**asdict(p), "side": p.side.value}
                for p in sorted(self._positions.values(), key=_ticket)
            ],
        }
        path = self._state_path
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(state, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:  # the trade happened in memory: failing it now would lie
            log.warning("cannot save the paper account to %s: %s", path, exc)


def _ticket(pos: _Position) -> int:
    return pos.ticket


def _level(spec: SymbolSpec, level: float | None) -> float | None:
    return None if level is None else round(level, spec.digits)
