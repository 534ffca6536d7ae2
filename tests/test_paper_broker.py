"""The paper broker: a simulated account that must behave like MT5 where the agent can tell."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from signalos_cli.agent.broker import (
    RETCODE_INVALID,
    RETCODE_INVALID_STOPS,
    RETCODE_INVALID_VOLUME,
    RETCODE_NO_MONEY,
    RETCODE_POSITION_CLOSED,
    BrokerError,
    SymbolSpec,
)
from signalos_cli.agent.paper import FIRST_TICKET, PaperBroker
from signalos_cli.agent.paper_market import DEFAULT_SYMBOLS, PaperSymbol
from signalosd.models import Side

BUY, SELL = Side.BUY, Side.SELL
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = T0.timestamp()

    def __call__(self) -> float:
        return self.t


def broker(**kw) -> PaperBroker:
    kw.setdefault("clock", Clock())
    b = PaperBroker(**kw)
    b.connect()
    return b


def refused(retcode: int, fn, *args) -> str:
    with pytest.raises(BrokerError) as info:
        fn(*args)
    assert info.value.retcode == retcode, info.value.message
    return info.value.message


# ---- prices and spread ---------------------------------------------------------------------


def test_builtin_symbols_have_realistic_specs():
    b = broker()
    for name in ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "BTCUSD"):
        spec = b.symbol(name)
        assert spec.volume_min == 0.01 and spec.volume_step == 0.01 and spec.volume_max >= 10
        assert spec.point == pytest.approx(10.0**-spec.digits)
    assert b.symbol("EURUSD").contract_size == 100_000
    assert b.symbol("USDJPY").digits == 3
    assert b.symbol("XAUUSD").contract_size == 100
    assert b.symbol("BTCUSD").contract_size == 1
    q = b.quote("EURUSD")
    assert q.ask == pytest.approx(q.bid + 12 * 0.00001)
    assert q.time == "2026-01-05T08:00:00.000Z"
    assert refused(RETCODE_INVALID, b.quote, "DOGEUSD").startswith("unknown symbol 'DOGEUSD'")


def test_buy_opens_at_ask_and_closes_at_bid_sell_the_reverse():
    b = broker()
    q = b.quote("EURUSD")
    buy = b.open_position("EURUSD", BUY, 0.1, None, None)
    sell = b.open_position("EURUSD", SELL, 0.1, None, None)
    assert (buy.price, sell.price) == (q.ask, q.bid)
    assert buy.ticket == FIRST_TICKET and sell.ticket == FIRST_TICKET + 1
    closed_buy = b.close_position(buy.ticket)
    closed_sell = b.close_position(sell.ticket)
    assert (closed_buy.price, closed_sell.price) == (q.bid, q.ask)
    # each round trip loses the spread: 12 points of 0.1 lot EURUSD = 1.20 USD
    assert closed_buy.profit == closed_sell.profit == -1.2
    assert b.account().balance == 10_000 - 2.4


def test_profit_realised_into_balance_and_equity_floats():
    b = broker()
    deal = b.open_position("EURUSD", BUY, 1.0, None, None)  # at ask 1.08512
    b.set_price("EURUSD", 1.08612)
    acct = b.account()
    assert acct.profit == 100.0 and acct.equity == 10_100.0 and acct.balance == 10_000.0
    [pos] = b.positions()
    assert pos.price_current == 1.08612 and pos.profit == 100.0
    assert b.close_position(deal.ticket).profit == 100.0
    acct = b.account()
    assert (acct.balance, acct.equity, acct.profit, acct.margin) == (10_100.0, 10_100.0, 0, 0)
    assert acct.margin_level is None
    assert b.positions() == []


def test_profit_converted_to_usd_for_usdjpy_and_gold():
    b = broker()
    jpy = b.open_position("USDJPY", SELL, 1.0, None, None)  # at bid 150.000
    gold = b.open_position("XAUUSD", BUY, 0.1, None, None)  # at ask 2350.25
    b.set_price("USDJPY", 149.0)  # ask 149.014
    b.set_price("XAUUSD", 2360.25)
    # (150 - 149.014) * 100,000 JPY at 149.0 JPY per USD
    assert b.close_position(jpy.ticket).profit == round(98_600 / 149.0, 2)
    assert b.close_position(gold.ticket).profit == 100.0  # 10 USD * 100 oz * 0.1 lot


def test_margin_per_symbol_in_usd():
    b = broker()
    b.open_position("EURUSD", BUY, 1.0, None, None)
    assert b.account().margin == round(100_000 * 1.085 / 100, 2)  # priced at the bid
    b = broker()
    b.open_position("USDJPY", BUY, 1.0, None, None)
    assert b.account().margin == 1000.0  # 100,000 USD / 100
    b = broker()
    b.open_position("XAUUSD", SELL, 1.0, None, None)
    assert b.account().margin == round(100 * 2350.25 / 100, 2)
    b = broker()
    b.open_position("BTCUSD", BUY, 0.1, None, None)
    acct = b.account()
    assert acct.margin == 65.0
    assert acct.margin_free == round(acct.equity - acct.margin, 2)
    assert acct.margin_level == round(acct.equity / acct.margin * 100, 2)


def test_not_enough_money_is_refused_with_needed_and_free():
    b = broker(balance=1000.0)
    message = refused(RETCODE_NO_MONEY, b.open_position, "EURUSD", BUY, 10.0, None, None)
    assert "margin 10851.20 needed, 1000.00 free" in message
    assert b.positions() == []
    b.open_position("EURUSD", BUY, 0.5, None, None)  # 542.50 of margin at the bid
    message = refused(RETCODE_NO_MONEY, b.open_position, "EURUSD", BUY, 0.5, None, None)
    assert "margin 542.56 needed, 451.50 free" in message  # 1000 - 6.00 of spread - 542.50


# ---- volumes -------------------------------------------------------------------------------


def test_volume_validation():
    b = broker()
    assert "multiple of the volume step 0.01" in refused(
        RETCODE_INVALID_VOLUME, b.open_position, "EURUSD", BUY, 0.015, None, None
    )
    assert "above the maximum 100" in refused(
        RETCODE_INVALID_VOLUME, b.open_position, "EURUSD", BUY, 101.0, None, None
    )
    refused(RETCODE_INVALID_VOLUME, b.open_position, "EURUSD", BUY, 0.0, None, None)
    refused(RETCODE_INVALID_VOLUME, b.open_position, "EURUSD", BUY, -1.0, None, None)
    refused(RETCODE_INVALID, b.open_position, "NOPE", BUY, 0.1, None, None)
    assert b.open_position("EURUSD", BUY, 0.07, None, None).volume == 0.07  # 7 * 0.01 in float
    assert b.open_position("EURUSD", BUY, 0.1 + 0.2, None, None).volume == 0.3


def custom_symbols() -> dict[str, PaperSymbol]:
    spec = SymbolSpec("US30", 1, 0.1, 1, volume_min=0.1, volume_step=0.01, volume_max=50)
    return {**DEFAULT_SYMBOLS, "US30": PaperSymbol(spec, 20, 39_000.0, 0.0001)}


def test_volume_below_the_minimum():
    b = broker(symbols=custom_symbols())
    assert "below the minimum 0.1 for US30" in refused(
        RETCODE_INVALID_VOLUME, b.open_position, "US30", BUY, 0.05, None, None
    )


def test_partial_close_rules():
    b = broker()
    t = b.open_position("EURUSD", BUY, 0.1, None, None).ticket
    deal = b.close_position(t, 0.04)
    assert deal.volume == 0.04 and deal.ticket == t
    assert b.positions()[0].volume == 0.06
    assert "not a multiple" in refused(RETCODE_INVALID_VOLUME, b.close_position, t, 0.015)
    assert "more than the position's 0.06" in refused(
        RETCODE_INVALID_VOLUME, b.close_position, t, 0.07
    )
    b.close_position(t, 0.05)
    assert b.positions()[0].volume == 0.01
    assert b.close_position(t, 0.01).volume == 0.01  # closing all of it is a full close
    assert b.positions() == []
    refused(RETCODE_POSITION_CLOSED, b.close_position, t)


def test_partial_close_that_would_leave_less_than_the_minimum():
    b = broker(symbols=custom_symbols())
    t = b.open_position("US30", BUY, 0.15, None, None).ticket
    message = refused(RETCODE_INVALID_VOLUME, b.close_position, t, 0.1)
    assert "would leave 0.05, below the minimum 0.1" in message
    assert "close the whole position" in message
    assert b.positions()[0].volume == 0.15
    assert b.close_position(t).volume == 0.15


def test_unknown_or_closed_ticket():
    b = broker()
    assert "position 999 is not open" in refused(RETCODE_POSITION_CLOSED, b.close_position, 999)
    refused(RETCODE_POSITION_CLOSED, b.modify_position, 999, None, None)


# ---- SL / TP -------------------------------------------------------------------------------


def test_stops_must_be_on_the_right_side_and_beyond_the_stops_level():
    b = broker()  # EURUSD bid 1.08500 ask 1.08512, stops level 10 points
    message = refused(RETCODE_INVALID_STOPS, b.open_position, "EURUSD", BUY, 0.1, 1.0851, None)
    assert "sl 1.08510 for a buy EURUSD must be below 1.08490" in message
    assert "bid 1.08500, stops level 10 points" in message
    message = refused(RETCODE_INVALID_STOPS, b.open_position, "EURUSD", BUY, 0.1, 1.08495, None)
    assert "below 1.08490" in message  # right side, but closer than the stops level
    message = refused(RETCODE_INVALID_STOPS, b.open_position, "EURUSD", BUY, 0.1, None, 1.0845)
    assert "tp 1.08450 for a buy EURUSD must be above 1.08510" in message
    message = refused(RETCODE_INVALID_STOPS, b.open_position, "EURUSD", SELL, 0.1, 1.0850, None)
    assert "must be above 1.08522 (ask 1.08512" in message
    refused(RETCODE_INVALID_STOPS, b.open_position, "EURUSD", SELL, 0.1, None, 1.0851)
    assert b.positions() == []
    # exactly the stops level away is allowed
    deal = b.open_position("EURUSD", BUY, 0.1, 1.0849, 1.0851)
    [pos] = b.positions()
    assert (pos.sl, pos.tp) == (1.0849, 1.0851)
    sell = b.open_position("EURUSD", SELL, 0.1, 1.08522, 1.08502)
    assert sell.price == 1.085
    assert deal.ticket != sell.ticket


def test_modify_validates_against_the_current_price():
    b = broker()
    t = b.open_position("EURUSD", BUY, 0.1, None, None).ticket
    b.modify_position(t, 1.08, 1.09)
    assert (b.positions()[0].sl, b.positions()[0].tp) == (1.08, 1.09)
    b.set_price("EURUSD", 1.0950)
    refused(RETCODE_INVALID_STOPS, b.modify_position, t, 1.08, 1.09)  # tp now below the bid
    b.modify_position(t, 1.0940, None)  # trail the SL, drop the TP
    [pos] = b.positions()
    assert (pos.sl, pos.tp) == (1.094, None)
    b.modify_position(t, 1.0940, None)  # the same levels again: not an error


# ---- poll: prices, SL/TP and stop out ------------------------------------------------------


def test_sl_hit_closes_at_the_level():
    b = broker()
    t = b.open_position("EURUSD", BUY, 1.0, 1.0840, 1.0870).ticket  # at 1.08512
    b.set_price("EURUSD", 1.08401)
    assert b.poll() == []
    b.set_price("EURUSD", 1.08398)
    [closed] = b.poll()
    assert closed.reason == "sl" and closed.price == 1.084
    assert closed.profit == round((1.084 - 1.08512) * 100_000, 2)
    assert closed.position.ticket == t and closed.position.price_current == 1.084
    assert closed.time == "2026-01-05T08:00:00.000Z"
    assert b.positions() == []
    assert b.account().balance == round(10_000 + closed.profit, 2)
    assert b.poll() == []


def test_tp_hit_on_a_sell_uses_the_ask():
    b = broker()
    b.open_position("EURUSD", SELL, 0.5, 1.0870, 1.0830)  # at bid 1.08500
    b.set_price("EURUSD", 1.08290)  # ask 1.08302: not yet
    assert b.poll() == []
    b.set_price("EURUSD", 1.08288)  # ask 1.08300
    [closed] = b.poll()
    assert closed.reason == "tp" and closed.price == 1.083
    assert closed.profit == 100.0  # 20 pips * 0.5 lot
    assert b.account().balance == 10_100.0


def test_sell_sl_hit():
    b = broker()
    b.open_position("XAUUSD", SELL, 0.1, 2360.00, None)  # at bid 2350.00
    b.set_price("XAUUSD", 2359.80)  # ask 2360.05
    [closed] = b.poll()
    assert (closed.reason, closed.price, closed.profit) == ("sl", 2360.0, -100.0)


def test_gap_closes_at_the_worse_current_price():
    b = broker()
    b.open_position("EURUSD", BUY, 1.0, 1.0840, 1.0870)
    b.open_position("EURUSD", SELL, 1.0, 1.0900, 1.0830)
    b.set_price("EURUSD", 1.0800, gap=True)  # weekend gap straight through the levels
    sl, tp = b.poll()
    assert (sl.reason, sl.price) == ("sl", 1.08)  # worse than the 1.0840 level
    assert (tp.reason, tp.price) == ("tp", 1.083)  # a TP never fills better than its level


def test_stop_out_closes_the_worst_position():
    b = broker(balance=1000.0)
    b.open_position("EURUSD", BUY, 0.9, None, None)  # margin ~977 of 1000
    b.set_price("EURUSD", 1.0790)  # loss ~550: margin level ~46 %
    [closed] = b.poll()
    assert closed.reason == "stop_out" and closed.price == 1.079
    acct = b.account()
    assert acct.margin == 0 and acct.balance == round(1000 + closed.profit, 2)


def test_random_walk_is_reproducible_for_a_seed_and_moves():
    def path(seed: int) -> list[float]:
        b = broker(seed=seed)
        out = []
        for _ in range(50):
            b.poll()
            out.extend(b.quote(s).bid for s in ("EURUSD", "USDJPY", "BTCUSD"))
        return out

    a, again, other = path(7), path(7), path(8)
    assert a == again
    assert a != other
    eurusd = a[0::3]
    assert len(set(eurusd)) > 10  # it moves
    assert all(abs(p - 1.085) < 0.01 for p in eurusd)  # but like a currency, not a meme coin
    for bid in a:
        assert bid == round(bid, 5)


def test_random_walk_fires_stops_at_their_level():
    b = broker(seed=3)
    b.open_position("BTCUSD", BUY, 0.01, 64_800.0, 65_300.0)
    closed = []
    for _ in range(5000):
        closed = b.poll()
        if closed:
            break
    [c] = closed
    assert (c.reason, c.price) in {("sl", 64_800.0), ("tp", 65_300.0)}


def test_clock_may_return_a_datetime():
    b = broker(clock=lambda: datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC))
    b.open_position("EURUSD", BUY, 0.01, None, None)
    assert b.positions()[0].time == "2026-03-01T12:30:15.250Z"


def test_account_fields():
    b = PaperBroker(seed=1, clock=Clock(), balance=5000.0, leverage=30)
    assert b.account().connected is False
    b.connect()
    acct = b.account()
    assert acct.connected and acct.trade_allowed and acct.leverage == 30
    assert (acct.balance, acct.equity, acct.margin, acct.margin_free) == (5000, 5000, 0, 5000)
    assert acct.currency == "USD" and acct.server == "SignalOS-Paper"


# ---- persistence ---------------------------------------------------------------------------


def test_state_survives_a_restart(tmp_path):
    path = tmp_path / "paper" / "account.json"
    clock = Clock()
    b = broker(seed=5, state_path=path, clock=clock)
    keep = b.open_position("EURUSD", BUY, 0.2, 1.08, None, "signal 42").ticket
    gone = b.open_position("XAUUSD", SELL, 0.1, None, None).ticket
    for _ in range(3):
        b.poll()
    b.close_position(gone)
    b.modify_position(keep, 1.07, 1.10)
    before = (b.account(), b.positions(), b.quote("EURUSD"), b.quote("BTCUSD"))
    assert not list(path.parent.glob("*.tmp"))
    assert json.loads(path.read_text())["next_ticket"] == gone + 1

    again = broker(seed=999, balance=1.0, state_path=path, clock=clock)  # the file wins
    assert (again.account(), again.positions(), again.quote("EURUSD"), again.quote("BTCUSD")) == (
        before
    )
    assert again.open_position("GBPUSD", BUY, 0.01, None, None).ticket == gone + 1
    again.poll()  # and the walk carries on from there
    broker(state_path=path, clock=clock)


def test_a_corrupt_state_file_is_not_silently_replaced(tmp_path):
    path = tmp_path / "account.json"
    path.write_text("{not json")
    with pytest.raises(BrokerError, match="cannot read the paper account"):
        PaperBroker(state_path=path)
    assert path.read_text() == "{not json"
