"""`signalos signals`, `signal send` and `commands ID [--wait]` against a live daemon."""

from __future__ import annotations

import json

from tests.cli_harness import EURUSD_BUY


def test_signal_send_queues_an_entry_with_every_field(live, run):
    args = [*EURUSD_BUY, "--entry", "1.1", "--sl", "1.05", "--tp", "1.2", "--tp", "1.3"]
    result = run("--json", "signal", "send", *args, "--external-id", "tg-1")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["signal"]["status"] == "accepted" and doc["duplicate"] is False
    assert doc["signal"]["tp"] == [1.2, 1.3] and doc["signal"]["source"] == "cli"
    assert doc["command"]["type"] == "open_trade"
    human = run("signal", "send", *args, "--external-id", "tg-1")
    assert human.exit_code == 0 and "already received" in human.stderr
    assert len(live.commands("open_trade")) == 1


def test_signal_send_wait_reports_the_brokers_refusal_with_exit_1(live, run):
    with live.agent():
        result = run("signal", "send", "--symbol", "EURUSD", "--side", "buy", "--volume", "90",
                     "--wait", "--timeout", "5")  # fmt: skip
    assert result.exit_code == 1
    assert "failed" in result.stdout
    assert "not enough money" in result.stderr and "retcode 10019" in result.stderr


def test_a_signal_while_paused_is_skipped_and_exits_1(live, run):
    run("pause", "--reason", "news")
    result = run("--json", "signal", "send", *EURUSD_BUY)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["signal"]["status"] == "skipped"
    assert "skipped" in result.stderr and "news" in result.stderr
    assert live.commands("open_trade") == []


def test_signal_validation_error_from_the_daemon_exits_1(live, run):
    result = run("signal", "send", *EURUSD_BUY, "--entry", "1.1", "--sl", "1.2")
    assert result.exit_code == 1 and "validation_error" in result.stderr
    bad_side = run("signal", "send", "--symbol", "EURUSD", "--side", "up", "--volume", "1")
    assert bad_side.exit_code == 2  # a usage error: the choices come from signalosd.models.Side


def test_signals_lists_newest_first_and_filters_by_status(run):
    run("signal", "send", *EURUSD_BUY)
    run("pause")
    run("signal", "send", "--symbol", "GBPUSD", "--side", "sell", "--volume", "0.1")
    human = run("signals")
    doc = json.loads(run("--json", "signals").stdout)
    skipped = json.loads(run("--json", "signals", "--status", "skipped").stdout)
    assert human.exit_code == 0 and human.stdout.splitlines()[0].split()[:2] == ["ID", "TIME"]
    assert [s["symbol"] for s in doc["signals"]] == ["GBPUSD", "EURUSD"]
    assert [s["symbol"] for s in skipped["signals"]] == ["GBPUSD"]


def test_commands_shows_a_command_and_wait_follows_it_to_its_outcome(live, run):
    queued = json.loads(run("--json", "sync").stdout)["command"]["id"]
    shown = run("commands", queued)
    assert shown.exit_code == 0 and "force_sync" in shown.stdout and "queued" in shown.stdout
    assert run("commands", queued, "--wait", "--timeout", "0.2").exit_code == 124
    with live.agent():
        done = run("--json", "commands", queued, "--wait", "--timeout", "5")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["command"]["status"] == "succeeded"


def test_commands_wait_on_a_cancelled_entry_exits_1_with_the_reason(run):
    entry = json.loads(run("--json", "signal", "send", *EURUSD_BUY).stdout)["command"]["id"]
    run("stop")  # cancels the queued entry
    result = run("commands", entry, "--wait")
    assert result.exit_code == 1
    assert "cancelled" in result.stderr and "emergency stop" in result.stderr


def test_an_unknown_command_exits_1(run):
    result = run("commands", "no-such-command")
    assert result.exit_code == 1 and "not_found" in result.stderr
