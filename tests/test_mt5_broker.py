"""The MT5 adapter against a fake `MetaTrader5` module: the requests it sends, the errors it
turns MT5's failures into, and how it notices positions the server closed."""

from __future__ import annotations

import sys

import pytest

from signalos_cli.agent.broker import BrokerError
from signalos_cli.agent.mt5 import DEFAULT_MAGIC, Mt5Broker
from signalosd.models import Side
from tests.fake_mt5 import T0, FakeMt5, TradePosition

BUY, SELL = Side.BUY, Side.SELL


def connected(fake: FakeMt5 | None = None, **kw) -> tuple[Mt5Broker, FakeMt5]:
    fake = fake or FakeMt5()
    b = Mt5Broker(module=fake, **kw)
    b.connect()
    return b, fake


def refused(retcode: int | None, fn, *args) -> str:
    with pytest.raises(BrokerError) as info:
        fn(*args)
    assert info.value.retcode == retcode, info.value.message
    return info.value.message


# ---- session -------------------------------------------------------------------------------


def test_missing_package_says_windows_only(monkeypatch):
    monkeypatch.setitem(sys.modules, "MetaTrader5", None)  # makes the import fail
    message = refused(None, Mt5Broker().connect)
    assert "MetaTrader5 package is not installed" in message
    assert "Windows only" in message and "--broker paper" in message


def test_initialize_failure_names_the_error_and_path():
    fake = FakeMt5()
    fake.init_error = (-10003, "IPC initialize failed, MetaTrader 5 x64 not found")
    b = Mt5Broker(path=r"C:\MT5\terminal64.exe", module=fake)
    message = refused(None, b.connect)
    assert r"cannot start MetaTrader 5 at C:\MT5\terminal64.exe" in message
    assert "MetaTrader 5 x64 not found (-10003)" in message


def test_login_failure_names_account_and_server():
    fake = FakeMt5()
    fake.login_error = (-6, "Terminal: Authorization failed")
    b = Mt5Broker(login="51234567", password="pw", server="ICMarkets-Demo", module=fake)
    message = refused(None, b.connect)
    assert "login to account 51234567 on ICMarkets-Demo failed" in message
    assert "Authorization failed (-6)" in message
    assert fake.calls[-1][0] == "shutdown"


def test_connect_logs_in_with_the_given_credentials():
    b, fake = connected(login=51234567, password="pw", server="ICMarkets-Demo", path="C:/mt5.exe")
    assert fake.calls[0] == ("initialize", ("C:/mt5.exe",), {})
    assert fake.calls[1] == ("login", (51234567,), {"password": "pw", "server": "ICMarkets-Demo"})
    acct = b.account()
    assert (acct.login, acct.server) == (51234567, "ICMarkets-Demo")


def test_connect_refuses_a_terminal_that_may_not_trade():
    fake = FakeMt5()
    fake.trade_allowed = False
    message = refused(10027, Mt5Broker(module=fake).connect)
    assert "Algo Trading" in message
    fake = FakeMt5()
    fake.account_trade_allowed = False
    assert "investor password" in refused(10017, Mt5Broker(module=fake).connect)


def test_account_maps_account_and_terminal_info():
    b, _ = connected()
    acct = b.account()
    assert (acct.balance, acct.equity, acct.margin, acct.margin_free) == (10_000, 10_000, 0, 10_000)
    assert acct.margin_level is None  # MT5 says 0.0 with no positions
    assert acct.ping_ms == 35.0  # ping_last is microseconds
    assert acct.connected and acct.trade_allowed and acct.currency == "USD"
    b.open_position("EURUSD", BUY, 1.0, None, None)
    acct = b.account()
    assert acct.margin == 1085.12 and acct.margin_level == pytest.approx(
        acct.equity / acct.margin * 100
    )


# ---- positions -----------------------------------------------------------------------------


def test_positions_mapping():
    b, fake = connected(time_offset_s=7200)  # a UTC+2 trade server
    fake.positions[77] = TradePosition(
        77, T0, T0 * 1000, 1, 0, 77, 0, 0.5, 39_010.0, 0.0, 38_900.0, 0, 0, 0, "US30", "manual"
    )
    [p] = b.positions()
    assert (p.ticket, p.symbol, p.type, p.volume) == (77, "US30", SELL, 0.5)
    assert (p.price_open, p.price_current) == (39_010.0, 39_002.0)  # a sell closes at the ask
    assert (p.sl, p.tp) == (None, 38_900.0)
    assert p.profit == 4.0 and p.swap == 0
    assert p.time == "2026-01-05T06:00:00.000Z"
    assert (p.volume_min, p.volume_step) == (0.1, 0.01)  # from symbol_info
    assert p.comment == "manual"


# ---- trade requests ------------------------------------------------------------------------


def test_open_request_fields():
    b, fake = connected()
    deal = b.open_position("EURUSD", BUY, 0.1, None, 1.0870, "signal 42")
    assert fake.requests[-1] == {
        "action": fake.TRADE_ACTION_DEAL,
        "symbol": "EURUSD",
        "volume": 0.1,
        "type": fake.ORDER_TYPE_BUY,
        "price": 1.08512,
        "sl": 0.0,
        "tp": 1.087,
        "deviation": 20,
        "magic": DEFAULT_MAGIC,
        "comment": "signal 42",
        "type_time": fake.ORDER_TIME_GTC,
        "type_filling": fake.ORDER_FILLING_FOK,  # filling_mode 1
    }
    assert (deal.symbol, deal.type, deal.volume, deal.price) == ("EURUSD", BUY, 0.1, 1.08512)
    [pos] = b.positions()
    assert pos.ticket == deal.ticket and pos.tp == 1.087 and pos.sl is None


def test_filling_mode_follows_the_symbol_flags():
    b, fake = connected()
    b.open_position("XAUUSD", SELL, 0.1, 2360.0, None)  # filling_mode 2: IOC only
    req = fake.requests[-1]
    assert req["type_filling"] == fake.ORDER_FILLING_IOC
    assert (req["type"], req["price"], req["sl"], req["tp"]) == (
        fake.ORDER_TYPE_SELL,
        2350.0,
        2360.0,
        0.0,
    )
    b.open_position("US30", BUY, 0.5, None, None)  # neither FOK nor IOC: RETURN
    assert fake.requests[-1]["type_filling"] == fake.ORDER_FILLING_RETURN


def test_close_and_partial_close_requests():
    b, fake = connected()
    t = b.open_position("EURUSD", BUY, 0.1, None, None).ticket
    fake.ticks["EURUSD"] = (1.08612, 1.08624)
    part = b.close_position(t, 0.04)
    req = fake.requests[-1]
    assert (req["action"], req["type"], req["position"]) == (1, fake.ORDER_TYPE_SELL, t)
    assert (req["volume"], req["price"]) == (0.04, 1.08612)
    assert (part.ticket, part.volume, part.price, part.profit) == (t, 0.04, 1.08612, 4.0)
    assert b.positions()[0].volume == 0.06
    full = b.close_position(t)
    assert fake.requests[-1]["volume"] == 0.06 and full.volume == 0.06 and full.profit == 6.0
    assert b.positions() == []
    assert b.poll() == []  # closed by us: not reported as a broker-side close


def test_close_of_a_sell_buys_at_the_ask():
    b, fake = connected()
    t = b.open_position("EURUSD", SELL, 0.1, None, None).ticket
    b.close_position(t)
    req = fake.requests[-1]
    assert (req["type"], req["price"], req["position"]) == (fake.ORDER_TYPE_BUY, 1.08512, t)


def test_volume_checks_happen_before_sending():
    b, fake = connected()
    refused(10014, b.open_position, "EURUSD", BUY, 0.015, None, None)
    assert fake.requests == []
    t = b.open_position("EURUSD", BUY, 0.1, None, None).ticket
    t2 = b.open_position("US30", BUY, 0.3, None, None).ticket  # minimum 0.1, step 0.01
    sent = len(fake.requests)
    assert "more than the position's 0.1" in refused(10014, b.close_position, t, 0.2)
    assert "close the whole position" in refused(10014, b.close_position, t2, 0.25)
    assert len(fake.requests) == sent


def test_modify_request_fields():
    b, fake = connected()
    t = b.open_position("EURUSD", BUY, 0.1, 1.08, 1.09).ticket
    b.modify_position(t, 1.081234, None)
    assert fake.requests[-1] == {
        "action": fake.TRADE_ACTION_SLTP,
        "symbol": "EURUSD",
        "position": t,
        "sl": 1.08123,  # normalised to the symbol's digits
        "tp": 0.0,
        "magic": DEFAULT_MAGIC,
    }
    b.modify_position(t, 1.08123, None)  # unchanged: MT5 answers "no changes", not an error
    [pos] = b.positions()
    assert (pos.sl, pos.tp) == (1.08123, None)


def test_stops_are_checked_with_a_readable_message():
    b, fake = connected()
    message = refused(10016, b.open_position, "EURUSD", BUY, 0.1, 1.0851, None)
    assert "sl 1.08510 for a buy EURUSD must be below 1.08490" in message
    assert fake.requests == []


def test_unknown_symbol_and_closed_ticket():
    b, _ = connected()
    assert "unknown symbol 'NOPE'" in refused(10013, b.open_position, "NOPE", BUY, 1, None, None)
    assert "position 42 is not open" in refused(10036, b.close_position, 42)
    refused(10036, b.modify_position, 42, None, None)


@pytest.mark.parametrize(
    ("retcode", "text"),
    [
        (10004, "requote: the price changed, try again (retcode 10004: Requote)"),
        (10016, "invalid stops (SL/TP too close to the price or on the wrong side) (retcode 10016"),
        (10018, "the market is closed (retcode 10018: Market closed)"),
        (
            10019,
            "not enough money (retcode 10019: No money): margin 10851.20 needed, 10000.00 free",
        ),
    ],
)
def test_failed_order_send_becomes_broker_error(retcode, text):
    b, fake = connected()
    fake.fail_retcode = retcode
    assert text in refused(retcode, b.open_position, "EURUSD", BUY, 10.0, None, None)
    fake.fail_retcode = None
    t = b.open_position("EURUSD", BUY, 0.1, None, None).ticket
    fake.fail_retcode = retcode
    refused(retcode, b.close_position, t)
    refused(retcode, b.modify_position, t, 1.08, None)
    assert len(b.positions()) == 1


def test_order_send_returning_none_uses_last_error():
    b, fake = connected()
    fake.initialized = False  # the terminal went away
    message = refused(None, b.open_position, "EURUSD", BUY, 0.1, None, None)
    assert "No IPC connection (-10004)" in message


# ---- poll ----------------------------------------------------------------------------------


def test_poll_reports_an_sl_close_from_the_deal_history():
    b, fake = connected()
    assert b.poll() == []
    t = b.open_position("EURUSD", BUY, 1.0, 1.0840, None).ticket
    other = b.open_position("EURUSD", BUY, 0.1, None, None).ticket
    fake.now = T0 + 60
    fake.close_by_server(t, fake.DEAL_REASON_SL, price=1.0840)
    [closed] = b.poll()
    assert closed.reason == "sl" and closed.price == 1.084
    assert closed.profit == round((1.084 - 1.08512) * 100_000, 2)
    assert closed.time == "2026-01-05T08:01:00.000Z"
    assert closed.position.ticket == t and closed.position.volume == 1.0
    assert b.poll() == []
    fake.close_by_server(other, fake.DEAL_REASON_TP)
    assert [c.reason for c in b.poll()] == ["tp"]


def test_poll_reports_manual_closes_and_missing_history():
    b, fake = connected()
    t1 = b.open_position("EURUSD", BUY, 0.1, None, None).ticket
    t2 = b.open_position("XAUUSD", BUY, 0.1, None, None).ticket
    b.poll()
    fake.close_by_server(t1, fake.DEAL_REASON_CLIENT)
    fake.positions.pop(t2)  # gone, but the history does not have the deal yet
    reasons = {c.position.ticket: c.reason for c in b.poll()}
    assert reasons == {t1: "manual", t2: "closed"}


def test_poll_sees_positions_opened_elsewhere():
    b, fake = connected()
    b.poll()
    fake.positions[77] = TradePosition(
        77, T0, T0 * 1000, 0, 0, 77, 0, 0.1, 1.085, 0.0, 0.0, 0, 0, 0, "EURUSD", ""
    )
    assert b.poll() == []
    fake.close_by_server(77, fake.DEAL_REASON_SO)
    assert [c.reason for c in b.poll()] == ["stop_out"]


def test_a_terminal_that_went_away_does_not_look_like_closed_positions():
    b, fake = connected()
    t = b.open_position("EURUSD", BUY, 0.1, None, None).ticket
    b.poll()
    fake.initialized = False
    assert "No IPC connection" in refused(None, b.poll)
    assert "cannot read MT5 position" in refused(None, b.close_position, t)
    fake.initialized = True
    assert b.poll() == []  # nothing was lost from what it knows
    fake.close_by_server(t, fake.DEAL_REASON_SL)
    assert [c.reason for c in b.poll()] == ["sl"]


def test_positions_closed_while_reconnecting_are_still_reported():
    b, fake = connected()
    t = b.open_position("EURUSD", BUY, 0.1, 1.08, None).ticket
    fake.close_by_server(t, fake.DEAL_REASON_SL, price=1.08)  # before any poll
    b.connect()  # the agent reconnects to the terminal
    [closed] = b.poll()
    assert (closed.position.ticket, closed.reason, closed.price) == (t, "sl", 1.08)
