"""The paper broker's market: symbol specifications and seeded random-walk prices.

Kept apart from the account logic in `paper.py` so either can be read in one sitting. Each
symbol walks with its own generator seeded from (seed, symbol, steps taken), so one
symbol's path does not depend on which other symbols exist, and a reloaded account
continues from where it was saved.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from signalos_cli.agent.broker import RETCODE_INVALID, BrokerError, Quote, SymbolSpec


@dataclass(frozen=True)
class PaperSymbol:
    """A tradable symbol: its MT5-like spec plus how its simulated price behaves."""

    spec: SymbolSpec
    spread: int  # points between bid and ask
    start: float  # first bid
    volatility: float  # standard deviation of one step, relative to the price
    profit_currency: str = "USD"  # the quote currency: profit and notional are in it


def _sym(
    name: str,
    digits: int,
    contract: float,
    vmax: float,
    spread: int,
    start: float,
    vol: float,
    stops: int,
    ccy: str = "USD",
) -> PaperSymbol:
    spec = SymbolSpec(
        name=name,
        digits=digits,
        point=10.0**-digits,
        contract_size=contract,
        volume_min=0.01,
        volume_step=0.01,
        volume_max=vmax,
        stops_level=stops,
    )
    return PaperSymbol(spec, spread, start, vol, ccy)


# Typical retail ECN-ish specs: 5-digit FX, 3-digit JPY, gold in 100 oz lots, 1 BTC lots.
DEFAULT_SYMBOLS: dict[str, PaperSymbol] = {
    s.spec.name: s
    for s in (
        _sym("EURUSD", 5, 100_000, 100, 12, 1.08500, 0.00008, 10),
        _sym("GBPUSD", 5, 100_000, 100, 16, 1.27000, 0.00010, 10),
        _sym("USDJPY", 3, 100_000, 100, 14, 150.000, 0.00008, 10, "JPY"),
        _sym("XAUUSD", 2, 100, 50, 25, 2350.00, 0.00012, 50),
        _sym("BTCUSD", 2, 1, 10, 2500, 65000.00, 0.00060, 1000),
    )
}


class Market:
    """Bid prices for every symbol, moved one random-walk step at a time."""

    def __init__(
        self,
        symbols: dict[str, PaperSymbol],
        seed: int,
        steps: int = 0,
        prices: dict[str, float] | None = None,
    ) -> None:
        self.symbols = dict(symbols)
        self.seed = seed
        self.steps = steps
        self._rngs = {n: random.Random(f"{seed}:{n}:{steps}") for n in self.symbols}
        self.bids = {n: s.start for n, s in self.symbols.items()}
        for name, bid in (prices or {}).items():
            if name in self.bids:
                self.bids[name] = bid
        for name in self.symbols:
            self._rate(self.symbols[name].profit_currency)  # fail now, not at the first trade

    def spec(self, symbol: str) -> SymbolSpec:
        """The symbol's spec; an unknown symbol is refused like MT5 refuses it."""
        try:
            return self.symbols[symbol].spec
        except KeyError:
            known = ", ".join(sorted(self.symbols))
            raise BrokerError(
                f"unknown symbol {symbol!r} (the paper broker trades {known})", RETCODE_INVALID
            ) from None

    def bid_ask(self, symbol: str) -> tuple[float, float]:
        s = self.symbols[symbol]
        bid = self.bids[symbol]
        return bid, round(bid + s.spread * s.spec.point, s.spec.digits)

    def quote(self, symbol: str, time: str) -> Quote:
        self.spec(symbol)
        bid, ask = self.bid_ask(symbol)
        return Quote(symbol, bid, ask, time)

    def set_bid(self, symbol: str, bid: float) -> None:
        spec = self.spec(symbol)
        if not bid > 0:
            raise ValueError(f"a price must be positive, not {bid}")
        self.bids[symbol] = round(bid, spec.digits)

    def step(self, skip: Iterable[str] = ()) -> None:
        """Move every symbol (but those in `skip`) one step of its random walk."""
        held = set(skip)
        self.steps += 1
        for name, s in self.symbols.items():
            move = self._rngs[name].gauss(0.0, s.volatility)
            if name in held:
                continue
            bid = self.bids[name] * (1.0 + move)
            self.bids[name] = round(max(bid, s.spec.point * 10), s.spec.digits)

    def to_usd(self, symbol: str, amount: float) -> float:
        """Convert an amount in the symbol's profit (quote) currency to USD at the current
        rate: EURUSD and XAUUSD are already in USD, USDJPY's yen are divided by its rate."""
        return amount * self._rate(self.symbols[symbol].profit_currency)

    def _rate(self, currency: str) -> float:
        if currency == "USD":
            return 1.0
        if currency + "USD" in self.bids:
            return self.bids[currency + "USD"]
        if "USD" + currency in self.bids:
            return 1.0 / self.bids["USD" + currency]
        raise ValueError(
            f"cannot convert {currency} to USD: add {currency}USD or USD{currency} to the symbols"
        )
