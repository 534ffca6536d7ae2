"""The agent's journal: at most once across restarts, and state that survives them."""

from __future__ import annotations

import sqlite3

from signalos_cli.agent.executor import Executor
from signalos_cli.agent.journal import INTERRUPTED, Journal, Levels, Trailing
from signalosd.models import Mode
from tests.counting_broker import NOW, CountingBroker, command, in_future, open_params


def test_journal_uses_wal_and_full_sync(tmp_path):
    journal = Journal.open(tmp_path)
    assert journal.path == tmp_path / "agent.sqlite3"
    mode = sqlite3.connect(journal.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_redelivered_command_after_restart_returns_stored_result_without_executing(tmp_path):
    broker = CountingBroker()
    cmd = command("open_trade", open_params(), trade_id=3, expires_at=in_future())
    first = Executor(broker, Journal.open(tmp_path), now=lambda: NOW).execute(cmd)
    assert first.result["ok"] and not first.replay
    assert broker.calls == ["open"]

    restarted = Executor(broker, Journal.open(tmp_path), now=lambda: NOW)
    again = restarted.execute(cmd)

    assert again.replay
    assert again.result == first.result
    assert broker.calls == ["open"]  # not executed a second time
    assert len(broker.positions()) == 1


def test_command_interrupted_by_a_crash_is_reported_failed_not_run_again(tmp_path):
    broker = CountingBroker()
    cmd = command("open_trade", open_params(), expires_at=in_future())
    crashed = Journal.open(tmp_path)
    crashed.begin(cmd["id"], cmd["type"])  # recorded as executing, then the process died
    crashed.close()

    journal = Journal.open(tmp_path)
    assert journal.interrupted == [cmd["id"]]
    outcome = Executor(broker, journal, now=lambda: NOW).execute(cmd)

    assert outcome.replay
    assert outcome.result["ok"] is False
    assert outcome.result["error"] == INTERRUPTED
    assert broker.calls == []


def test_refusals_are_stored_so_a_redelivery_gets_the_same_answer(tmp_path):
    journal = Journal.open(tmp_path)
    journal.set_mode(Mode.PAUSED)
    broker = CountingBroker()
    ex = Executor(broker, journal, now=lambda: NOW)
    cmd = command("open_trade", open_params(), expires_at=in_future())
    refused = ex.execute(cmd).result
    journal.set_mode(Mode.RUNNING)

    again = ex.execute(cmd)

    assert again.replay and again.result == refused
    assert broker.calls == []


def test_halted_mode_survives_a_restart(tmp_path):
    Journal.open(tmp_path).set_mode(Mode.HALTED)
    assert Journal.open(tmp_path).mode is Mode.HALTED


def test_a_fresh_journal_is_running_without_stealth(tmp_path):
    journal = Journal.open(tmp_path)
    assert journal.mode is Mode.RUNNING
    assert journal.stealth is False


def test_per_ticket_state_survives_a_restart_and_is_forgotten_on_close(tmp_path):
    journal = Journal.open(tmp_path)
    journal.set_stealth(True)
    journal.set_virtual(101, 1.08, None)
    journal.set_trailing(101, Trailing(0.002, 0.0005, 1.09))
    journal.set_trade_id(101, 42)
    journal.close()

    reopened = Journal.open(tmp_path)
    assert reopened.stealth is True
    assert reopened.virtual(101) == Levels(1.08, None)
    assert reopened.trailing(101) == Trailing(0.002, 0.0005, 1.09)
    assert reopened.trade_id(101) == 42
    assert reopened.ticket_for_trade(42) == 101

    reopened.forget(101)
    assert reopened.virtual(101) is None
    assert reopened.trailing(101) is None
    assert reopened.trade_id(101) is None


def test_prune_drops_state_of_positions_that_are_gone(tmp_path):
    journal = Journal.open(tmp_path)
    for ticket in (1, 2):
        journal.set_virtual(ticket, 1.0, 2.0)
        journal.set_trade_id(ticket, ticket * 10)
    journal.prune({2})
    assert set(journal.all_virtual()) == {2}
    assert journal.all_trade_ids() == {2: 20}
