"""The executor: each command type on the real paper broker, with the journal on disk."""

from __future__ import annotations

from dataclasses import replace

import pytest

from signalos_cli.agent.broker import (
    RETCODE_INVALID_STOPS,
    RETCODE_INVALID_VOLUME,
    RETCODE_NO_MONEY,
    RETCODE_POSITION_CLOSED,
    BrokerError,
    Deal,
)
from signalos_cli.agent.journal import Levels, Trailing
from signalosd.models import CommandResult, Mode
from tests.counting_broker import (
    CALM,
    CountingBroker,
    command,
    in_future,
    make_executor,
    open_params,
    open_trade,
)

BID = 1.08500  # EURUSD in the calm paper market; ask = bid + 0.00012


def test_open_trade_reports_ticket_price_volume_and_remembers_the_trade_id(tmp_path):
    ex = make_executor(tmp_path)
    cmd = command("open_trade", open_params(sl=1.08, tp=[1.09, 1.10]), trade_id=7,
                  expires_at=in_future())  # fmt: skip
    outcome = ex.execute(cmd)

    CommandResult.model_validate(outcome.result)
    data = outcome.result["data"]
    assert outcome.result["ok"] and outcome.result["command_id"] == cmd["id"]
    assert data["price"] == pytest.approx(BID + 0.00012) and data["volume"] == 0.1
    (pos,) = ex.broker.positions()
    assert data["ticket"] == pos.ticket
    assert (pos.sl, pos.tp) == (1.08, 1.09)  # the first TP of the list
    assert ex.journal.trade_id(pos.ticket) == 7


def test_stealth_open_keeps_sl_and_tp_virtual(tmp_path):
    ex = make_executor(tmp_path)
    ex.journal.set_stealth(True)
    ticket = open_trade(ex, sl=1.08, tp=[1.09])

    (pos,) = ex.broker.positions()
    assert (pos.sl, pos.tp) == (None, None)
    assert ex.journal.virtual(ticket) == Levels(1.08, 1.09)


@pytest.mark.parametrize("mode", [Mode.PAUSED, Mode.HALTED])
def test_open_trade_is_refused_while_paused_or_halted(tmp_path, mode):
    ex = make_executor(tmp_path)
    ex.journal.set_mode(mode)
    result = ex.execute(command("open_trade", open_params(), expires_at=in_future())).result
    assert result["ok"] is False
    assert result["error"] == f"trading is {mode.value} on the agent"
    assert ex.broker.calls == []


def test_open_trade_past_its_expiry_is_refused(tmp_path):
    ex = make_executor(tmp_path)
    result = ex.execute(command("open_trade", open_params(), expires_at=in_future(-1))).result
    assert result["ok"] is False
    assert result["error"].startswith("expired before execution")
    assert ex.broker.calls == []


def test_broker_refusal_gives_a_readable_error_and_the_retcode(tmp_path):
    ex = make_executor(tmp_path)
    result = ex.execute(command("open_trade", open_params(volume=90.0))).result
    assert result["ok"] is False
    assert result["retcode"] == RETCODE_NO_MONEY
    assert result["error"].startswith("not enough money")


def test_close_trade_closes_the_whole_position(tmp_path):
    ex = make_executor(tmp_path)
    ticket = open_trade(ex)
    ex.broker.set_price("EURUSD", 1.0860)
    outcome = ex.execute(command("close_trade", {"ticket": ticket, "symbol": "EURUSD"}))

    assert outcome.result["ok"]
    assert outcome.result["data"]["profit"] == pytest.approx(8.8)  # (1.0860-1.08512) * 10,000
    assert ex.broker.positions() == []
    assert [c.position.ticket for c in outcome.closed] == [ticket]


def test_close_trade_finds_the_ticket_from_the_trade_id(tmp_path):
    ex = make_executor(tmp_path)
    ticket = open_trade(ex)  # trade_id 7
    outcome = ex.execute(command("close_trade", {"ticket": None}, trade_id=7))
    assert outcome.result["ok"] and outcome.result["data"]["ticket"] == ticket


def test_close_of_an_unknown_position_fails_with_position_closed(tmp_path):
    ex = make_executor(tmp_path)
    result = ex.execute(command("close_trade", {"ticket": 999})).result
    assert result["ok"] is False and result["retcode"] == RETCODE_POSITION_CLOSED


def test_partial_close_rounds_down_to_the_volume_step(tmp_path):
    ex = make_executor(tmp_path)
    ticket = open_trade(ex, volume=0.1)
    result = ex.execute(command("partial_close", {"ticket": ticket, "volume": 0.057})).result
    assert result["ok"], result
    assert result["data"]["volume"] == 0.05 and result["data"]["remaining"] == 0.05
    assert ex.broker.positions()[0].volume == 0.05


@pytest.mark.parametrize(
    ("volume", "message"),
    [(0.15, "would leave 0.05, below the minimum 0.1"), (0.05, "below the minimum 0.1")],
)
def test_partial_close_is_refused_when_below_the_minimum(tmp_path, volume, message):
    spec = replace(CALM["EURUSD"].spec, volume_min=0.1)
    broker = CountingBroker(symbols=CALM | {"EURUSD": replace(CALM["EURUSD"], spec=spec)})
    ex = make_executor(tmp_path, broker)
    ticket = open_trade(ex, volume=0.2)
    result = ex.execute(command("partial_close", {"ticket": ticket, "volume": volume})).result
    assert result["ok"] is False and result["retcode"] == RETCODE_INVALID_VOLUME
    assert message in result["error"]
    assert broker.positions()[0].volume == 0.2


def test_modify_sets_levels_at_the_broker(tmp_path):
    ex = make_executor(tmp_path)
    ticket = open_trade(ex)
    result = ex.execute(command("modify_trade", {"ticket": ticket, "sl": 1.08, "tp": 1.09}))
    assert result.result["data"] == {"ticket": ticket, "sl": 1.08, "tp": 1.09, "virtual": False}
    assert (ex.broker.positions()[0].sl, ex.broker.positions()[0].tp) == (1.08, 1.09)


def test_modify_in_stealth_moves_the_virtual_levels_and_checks_them(tmp_path):
    ex = make_executor(tmp_path)
    ex.journal.set_stealth(True)
    ticket = open_trade(ex, sl=1.08)
    ok = ex.execute(command("modify_trade", {"ticket": ticket, "sl": 1.081, "tp": 1.09}))
    bad = ex.execute(command("modify_trade", {"ticket": ticket, "sl": 1.0851, "tp": None}))

    assert ok.result["ok"] and ex.journal.virtual(ticket) == Levels(1.081, 1.09)
    assert bad.result["ok"] is False and bad.result["retcode"] == RETCODE_INVALID_STOPS
    assert ex.broker.positions()[0].sl is None
    assert "modify" not in ex.broker.calls


def test_trailing_stop_stores_the_settings(tmp_path):
    ex = make_executor(tmp_path)
    ticket = open_trade(ex)
    result = ex.execute(command("trailing_stop", {"ticket": ticket, "distance": 0.002})).result
    assert result["data"] == {"ticket": ticket, "distance": 0.002, "step": None}
    assert ex.journal.trailing(ticket) == Trailing(0.002, None, None)


def test_emergency_stop_with_close_all_flattens_and_halts(tmp_path):
    ex = make_executor(tmp_path)
    tickets = [open_trade(ex), open_trade(ex, side="sell")]
    result = ex.execute(command("emergency_stop", {"close_all": True, "reason": "test"})).result
    assert result["ok"]
    assert result["data"]["closed"] == tickets and result["data"]["failed"] == []
    assert ex.broker.positions() == []
    assert ex.journal.mode is Mode.HALTED


def test_emergency_stop_collects_per_ticket_failures(tmp_path):
    class Stuck(CountingBroker):
        def close_position(self, ticket: int, volume: float | None = None) -> Deal:
            if ticket == self.stuck:
                raise BrokerError("market closed", 10018)
            return super().close_position(ticket, volume)

    broker = Stuck()
    ex = make_executor(tmp_path, broker)
    first, broker.stuck = open_trade(ex), open_trade(ex)
    result = ex.execute(command("emergency_stop", {"close_all": True})).result

    assert result["ok"] is False
    assert result["data"]["closed"] == [first]
    assert result["data"]["failed"] == [
        {"ticket": broker.stuck, "error": "market closed", "retcode": 10018}
    ]
    assert f"{broker.stuck}: market closed" in result["error"]
    assert ex.journal.mode is Mode.HALTED


def test_emergency_stop_without_close_all_keeps_positions(tmp_path):
    ex = make_executor(tmp_path)
    open_trade(ex)
    assert ex.execute(command("emergency_stop", {"close_all": False})).result["ok"]
    assert len(ex.broker.positions()) == 1 and ex.journal.mode is Mode.HALTED


@pytest.mark.parametrize(
    ("before", "type_", "params", "after"),
    [
        (Mode.RUNNING, "pause", {}, Mode.PAUSED),
        (Mode.PAUSED, "resume", {"from_halt": False}, Mode.RUNNING),
        (Mode.HALTED, "resume", {"from_halt": True}, Mode.RUNNING),
        (Mode.HALTED, "pause", {}, Mode.HALTED),  # pausing never loosens a halt
    ],
)
def test_pause_and_resume_set_the_local_mode(tmp_path, before, type_, params, after):
    ex = make_executor(tmp_path)
    ex.journal.set_mode(before)
    result = ex.execute(command(type_, params)).result
    assert result["ok"] and result["data"]["mode"] == after.value
    assert ex.journal.mode is after


def test_set_stealth_on_moves_levels_to_virtual_and_off_puts_them_back(tmp_path):
    ex = make_executor(tmp_path)
    ticket = open_trade(ex, sl=1.08, tp=[1.09])

    on = ex.execute(command("set_stealth", {"enabled": True})).result
    pos = ex.broker.positions()[0]
    assert on["ok"] and (pos.sl, pos.tp) == (None, None)
    assert ex.journal.virtual(ticket) == Levels(1.08, 1.09) and ex.journal.stealth

    off = ex.execute(command("set_stealth", {"enabled": False})).result
    pos = ex.broker.positions()[0]
    assert off["ok"] and (pos.sl, pos.tp) == (1.08, 1.09)
    assert ex.journal.virtual(ticket) is None and not ex.journal.stealth


def test_force_sync_asks_the_runner_for_a_snapshot(tmp_path):
    ex = make_executor(tmp_path)
    open_trade(ex)
    outcome = ex.execute(command("force_sync"))
    assert outcome.sync and outcome.result["data"] == {"positions": 1}


def test_unknown_command_type_is_refused(tmp_path):
    result = make_executor(tmp_path).execute(command("teleport")).result
    assert result["ok"] is False and "unknown command type 'teleport'" in result["error"]


def test_a_command_missing_a_param_fails_with_a_readable_error(tmp_path):
    result = make_executor(tmp_path).execute(command("open_trade", {"side": "buy"})).result
    assert result["ok"] is False and result["error"] == "the command lacks the param 'symbol'"


def test_open_trade_not_yet_expired_by_the_executor_clock_runs(tmp_path):
    ex = make_executor(tmp_path)  # its clock stands at NOW
    assert ex.execute(command("open_trade", open_params(), expires_at=in_future(1))).ok
