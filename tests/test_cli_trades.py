"""`signalos trades|trade|close|partial-close|modify|trail` against a live daemon; the results
come from the real agent on a paper broker."""

from __future__ import annotations

import json
import time

import pytest

from tests.cli_harness import EURUSD_BUY, Cli


def open_trade(run: Cli) -> int:
    """A paper trade opened through the CLI (`signal send --wait`); needs the agent."""
    result = run("--json", "signal", "send", *EURUSD_BUY, "--sl", "1.05", "--wait")
    assert result.exit_code == 0, result.stderr
    return int(json.loads(result.stdout)["command"]["trade_id"])


def test_trades_lists_open_trades_as_a_table_or_json(live, run):
    trade_id = live.add_trade(symbol="GBPUSD")
    human, doc = run("trades"), json.loads(run("trades", "--json").stdout)
    assert human.exit_code == 0
    header, row = human.stdout.splitlines()
    assert header.split()[:3] == ["ID", "SYMBOL", "SIDE"]
    assert row.split()[:3] == [str(trade_id), "GBPUSD", "buy"]
    assert [t["id"] for t in doc["trades"]] == [trade_id]


def test_trades_all_and_symbol_filters(live, run):
    live.add_trade(symbol="GBPUSD")
    closed = live.add_trade(status="closed", ticket=900_002)
    open_ids = [t["id"] for t in json.loads(run("--json", "trades").stdout)["trades"]]
    all_ids = [t["id"] for t in json.loads(run("--json", "trades", "--all").stdout)["trades"]]
    eur = json.loads(run("--json", "trades", "--all", "--symbol", "EURUSD").stdout)["trades"]
    assert closed not in open_ids and closed in all_ids
    assert [t["id"] for t in eur] == [closed]


def test_no_trades_is_a_message_on_stderr_and_exit_0(run):
    result = run("trades")
    assert result.exit_code == 0 and result.stdout == "" and "no trades" in result.stderr


def test_trade_shows_one_trade(live, run):
    trade_id = live.add_trade()
    human, doc = (
        run("trade", str(trade_id)),
        json.loads(run("--json", "trade", str(trade_id)).stdout),
    )
    assert human.exit_code == 0 and "EURUSD" in human.stdout and "open price" in human.stdout
    assert doc["id"] == trade_id and doc["status"] == "open"


@pytest.mark.parametrize(
    "args",
    [
        ["trade", "42"],
        ["close", "42", "--yes"],
        ["partial-close", "42", "--yes"],
        ["modify", "42", "--sl", "1.05"],
        ["trail", "42", "--distance", "0.01"],
    ],
)
def test_an_unknown_trade_exits_1_with_the_daemons_message(live, run, args):
    result = run(*args)
    assert result.exit_code == 1
    assert "trade 42 not found" in result.stderr and result.stdout == ""
    assert live.commands() == []


def test_a_422_from_the_daemon_is_a_failure_exit_1(live, run):
    trade_id = live.add_trade()  # a buy at 1.1010: a stop loss above the price is invalid
    result = run("modify", str(trade_id), "--sl", "1.2")
    assert result.exit_code == 1
    assert "invalid_stops" in result.stderr
    assert live.commands() == []


def test_close_without_a_terminal_needs_yes_exit_2_and_sends_nothing(live, run):
    trade_id = live.add_trade()
    for args in (["close", str(trade_id)], ["partial-close", str(trade_id)]):
        result = run(*args)
        assert result.exit_code == 2
        assert "--yes" in result.stderr
    assert live.commands() == []


def test_close_yes_queues_a_close_and_json_is_the_daemons_reply(live, run):
    trade_id = live.add_trade()
    result = run("--json", "close", str(trade_id), "--yes")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["command"]["type"] == "close_trade" and doc["command"]["trade_id"] == trade_id
    again = run("close", str(trade_id), "--yes")
    assert again.exit_code == 1 and "trade_closing" in again.stderr


def test_partial_close_fraction_or_volume_not_both(live, run):
    trade_id = live.add_trade(volume=1.0)
    both = run("partial-close", str(trade_id), "--fraction", "0.5", "--volume", "0.2", "--yes")
    assert both.exit_code == 2
    by_volume = run("--json", "partial-close", str(trade_id), "--volume", "0.2", "--yes")
    assert json.loads(by_volume.stdout)["command"]["params"]["volume"] == pytest.approx(0.2)


def test_modify_sends_only_the_named_levels_and_none_removes_one(live, run):
    trade_id = live.add_trade(sl=1.05, tp=1.2)
    result = run("--json", "modify", str(trade_id), "--tp", "none")
    assert result.exit_code == 0, result.stderr
    params = json.loads(result.stdout)["command"]["params"]
    assert params["tp"] is None and params["sl"] == 1.05  # the stop loss is kept
    nothing = run("modify", str(trade_id))
    assert nothing.exit_code == 2 and "--sl" in nothing.stderr


def test_trail_sends_distance_and_step(live, run):
    trade_id = live.add_trade()
    result = run("--json", "trail", str(trade_id), "--distance", "0.002", "--step", "0.001")
    assert result.exit_code == 0, result.stderr
    params = json.loads(result.stdout)["command"]["params"]
    assert params["distance"] == 0.002 and params["step"] == 0.001


def test_manage_a_paper_trade_from_open_to_close_waiting_for_each_result(live, run):
    with live.agent() as broker:
        trade_id = open_trade(run)
        steps = [
            ["modify", str(trade_id), "--sl", "1.06"],
            ["partial-close", str(trade_id), "--fraction", "0.5", "--yes"],
            ["trail", str(trade_id), "--distance", "0.01"],
            ["close", str(trade_id), "--yes"],
        ]
        for args in steps:
            result = run(*args, "--wait", "--timeout", "5")
            assert result.exit_code == 0, (args, result.stderr)
            assert "succeeded" in result.stdout
        assert broker.positions() == []
        # the mirror follows when the agent reports the position gone (just after the result)
        deadline = time.monotonic() + 5
        while (status := trade_status(run, trade_id)) != "closed" and time.monotonic() < deadline:
            time.sleep(0.02)
    assert status == "closed"


def trade_status(run: Cli, trade_id: int) -> str:
    return str(json.loads(run("--json", "trade", str(trade_id)).stdout)["status"])
