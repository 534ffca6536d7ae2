"""Virtual SL/TP and trailing stops: the pure plan, then end to end on the paper broker."""

from __future__ import annotations

import pytest

from signalos_cli.agent import stops
from signalos_cli.agent.broker import BrokerPosition, Quote
from signalos_cli.agent.journal import Levels, Trailing
from signalos_cli.agent.runner import Agent
from signalosd.models import Side, TradeUpdate
from tests.counting_broker import command, make_executor, open_trade


def _pos(side: str, sl: float | None = None, tp: float | None = None) -> BrokerPosition:
    return BrokerPosition(1, "EURUSD", Side(side), 0.1, 1.1000, 1.1000, sl, tp, 0.0, 0.0, "")


def _quote(bid: float, spread: float = 0.0002) -> dict[str, Quote]:
    return {"EURUSD": Quote("EURUSD", bid, round(bid + spread, 5), "")}


@pytest.mark.parametrize(
    ("side", "levels", "bid", "expected"),
    [
        ("buy", Levels(1.0950, 1.1100), 1.0950, stops.REASON_SL),  # bid <= sl
        ("buy", Levels(1.0950, 1.1100), 1.1100, stops.REASON_TP),  # bid >= tp
        ("buy", Levels(1.0950, 1.1100), 1.0990, None),
        ("sell", Levels(1.1050, 1.0900), 1.1048, stops.REASON_SL),  # ask 1.1050 >= sl
        ("sell", Levels(1.1050, 1.0900), 1.0898, stops.REASON_TP),  # ask 1.0900 <= tp
        ("sell", Levels(1.1050, 1.0900), 1.1047, None),  # ask 1.1049: neither
        ("buy", Levels(None, None), 0.5, None),
    ],
)
def test_virtual_levels_close_at_the_price_the_position_closes_at(side, levels, bid, expected):
    actions = stops.plan([_pos(side)], _quote(bid), {1: levels}, {}, stealth=True)
    assert [a.reason for a in actions if isinstance(a, stops.ClosePosition)] == (
        [expected] if expected else []
    )


@pytest.mark.parametrize(
    ("side", "sl", "bid", "step", "new_sl"),
    [
        ("buy", None, 1.1000, None, 1.0980),  # no SL yet: set at once
        ("buy", 1.0970, 1.1000, None, 1.0980),  # bid - distance is above the SL
        ("buy", 1.0985, 1.1000, None, None),  # it would move the SL down: never
        ("buy", 1.0975, 1.1000, 0.0010, None),  # a gain of 0.0005 < step
        ("buy", 1.0970, 1.1000, 0.0010, 1.0980),  # a gain of 0.0010 = step
        ("sell", 1.1030, 1.1000, None, 1.1022),  # ask 1.1002 + distance
        ("sell", 1.1020, 1.1000, None, None),
    ],
)
def test_trailing_moves_the_stop_only_forward(side, sl, bid, step, new_sl):
    pos = _pos(side, sl=sl)
    actions = stops.plan(
        [pos], _quote(bid), {}, {1: Trailing(0.0020, step, None)}, False, {"EURUSD": 5}
    )
    moved = [a.sl for a in actions if isinstance(a, stops.MoveStop)]
    assert moved == ([pytest.approx(new_sl)] if new_sl else [])
    assert all(not a.virtual for a in actions if isinstance(a, stops.MoveStop))


def test_trailing_in_stealth_moves_the_virtual_stop_and_keeps_the_tp():
    actions = stops.plan(
        [_pos("buy")], _quote(1.1000), {1: Levels(1.0950, 1.1200)},
        {1: Trailing(0.0020, None, None)}, True, {"EURUSD": 5},
    )  # fmt: skip
    assert actions == [stops.MoveStop(1, "EURUSD", 1.0980, 1.12, True, 1.1)]


def _agent(tmp_path):
    ex = make_executor(tmp_path)
    return Agent(ex.broker, ex.journal), ex


def test_virtual_sl_hit_closes_the_position_and_reports_it(tmp_path):
    agent, ex = _agent(tmp_path)
    ex.journal.set_stealth(True)
    ticket = open_trade(ex, sl=1.0840, tp=[1.0900])
    assert [u["ticket"] for u in agent.reporter.observe(poll=True)] == [ticket]

    ex.broker.set_price("EURUSD", 1.0839)
    (update,) = agent.reporter.observe(poll=True)

    TradeUpdate.model_validate(update)
    assert update["status"] == "closed" and update["close_reason"] == stops.REASON_SL
    assert update["trade_id"] == 7 and update["close_price"] == 1.0839
    assert ex.broker.positions() == []
    assert ex.journal.virtual(ticket) is None


def test_virtual_tp_of_a_sell_closes_at_the_ask(tmp_path):
    agent, ex = _agent(tmp_path)
    ex.journal.set_stealth(True)
    open_trade(ex, side="sell", sl=1.0900, tp=[1.0800])
    agent.reporter.observe(poll=True)
    ex.broker.set_price("EURUSD", 1.0790)
    (update,) = agent.reporter.observe(poll=True)
    assert update["close_reason"] == stops.REASON_TP
    assert update["close_price"] == pytest.approx(1.0790 + 0.00012)


def test_trailing_moves_the_broker_sl_as_the_price_rises(tmp_path):
    agent, ex = _agent(tmp_path)
    ticket = open_trade(ex)
    ex.execute(command("trailing_stop", {"ticket": ticket, "distance": 0.0010}))

    sls = []
    for bid in (1.0850, 1.0870, 1.0865, 1.0880):
        ex.broker.set_price("EURUSD", bid)
        agent.reporter.observe(poll=True)
        sls.append(ex.broker.positions()[0].sl)

    assert sls == [1.0840, 1.0860, 1.0860, 1.0870]
    assert ex.journal.trailing(ticket).best == 1.0880


def test_trailing_in_stealth_moves_the_virtual_sl_until_it_is_hit(tmp_path):
    agent, ex = _agent(tmp_path)
    ex.journal.set_stealth(True)
    ticket = open_trade(ex, sl=1.0800)
    ex.execute(command("trailing_stop", {"ticket": ticket, "distance": 0.0010}))
    ex.broker.set_price("EURUSD", 1.0880)
    agent.reporter.observe(poll=True)
    assert ex.journal.virtual(ticket).sl == 1.0870
    assert ex.broker.positions()[0].sl is None

    ex.broker.set_price("EURUSD", 1.0869)
    (update,) = agent.reporter.observe(poll=True)
    assert update["status"] == "closed" and update["close_reason"] == stops.REASON_SL
