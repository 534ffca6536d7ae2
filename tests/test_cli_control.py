"""`signalos status|health|stop|pause|resume|stealth|sync` against a live daemon, in both output
modes, with and without an agent to report the result."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.cli_harness import Cli, LiveDaemon


def mode(live: LiveDaemon, run: Cli) -> str:
    return str(json.loads(run("--json", "status").stdout)["state"]["mode"])


def test_status_shows_mode_stealth_agent_mt5_and_queues(live, run):
    with live.agent():
        deadline = time.monotonic() + 5  # the agent's first account report is on its way
        while (doc := json.loads(run("--json", "status").stdout))["health"]["mt5"] is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        human = run("status")
    assert human.exit_code == 0, human.stderr
    for word in ("mode", "running", "stealth", "agent", "connected", "paper", "mt5", "queues"):
        assert word in human.stdout
    assert "its mode running" in human.stdout  # the agent's own report (agent_state)
    assert human.stderr == ""
    assert set(doc) == {"state", "health"}
    assert doc["state"]["mode"] == "running" and doc["health"]["agent"]["connected"] is True
    assert doc["health"]["mt5"]["balance"] > 0
    assert set(doc["health"]["queues"]) == {"queued", "sent", "acked"}


def test_status_without_an_agent_says_not_connected(run):
    result = run("status")
    assert result.exit_code == 0
    assert "not connected" in result.stdout and "no report yet" in result.stdout


def test_health_prints_every_field(run):
    human, doc = run("health"), json.loads(run("health", "--json").stdout)
    assert human.exit_code == 0
    assert "db.ok" in human.stdout and "uptime_s" in human.stdout
    assert doc["status"] == "ok" and doc["db"]["ok"] is True


def test_stop_halts_and_flattens_and_repeating_it_still_exits_0(live, run):
    first = run("--json", "stop", "--flatten", "--reason", "drawdown")
    again = run("stop")
    assert first.exit_code == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["mode"] == "halted" and doc["changed"] is True and doc["reason"] == "drawdown"
    assert doc["command"]["type"] == "emergency_stop"
    assert doc["command"]["params"]["close_all"] is True
    assert again.exit_code == 0
    assert "halted" in again.stdout and "nothing changed" in again.stderr
    assert re.search(r"cancelled\s+0 unfinished entries or resumes", again.stdout), again.stdout
    assert [c["type"] for c in live.commands()] == ["emergency_stop", "emergency_stop"]


def test_pause_then_pause_again_is_a_no_op_exit_0_and_resume_runs_again(live, run):
    paused = run("pause", "--reason", "news")
    again = run("--json", "pause")
    assert paused.exit_code == 0 and "paused" in paused.stdout and "news" in paused.stdout
    assert again.exit_code == 0 and json.loads(again.stdout)["changed"] is False
    assert run("resume").exit_code == 0
    assert mode(live, run) == "running"
    assert [c["type"] for c in live.commands()] == ["pause", "resume"]


def test_pause_while_halted_is_refused_with_exit_1(run):
    run("stop")
    result = run("pause")
    assert result.exit_code == 1
    assert "mode_conflict" in result.stderr and result.stdout == ""


def test_leaving_a_halt_needs_from_halt(live, run):
    run("stop")
    plain = run("resume")
    assert plain.exit_code == 1 and "--from-halt" in plain.stderr
    confirmed = run("resume", "--from-halt", "--reason", "checked")
    assert confirmed.exit_code == 0, confirmed.stderr
    assert mode(live, run) == "running"


@pytest.mark.parametrize(
    ("args", "expected"),
    [(["on"], True), (["off"], False), (["toggle"], True)],
)
def test_stealth_on_off_toggle(run, args, expected):
    if args == ["off"]:
        run("stealth", "on")
    result = run("--json", "stealth", *args)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["stealth"] is expected


def test_sync_queues_a_force_sync_and_wait_reports_success(live, run):
    with live.agent():
        result = run("sync", "--wait", "--timeout", "5")
    assert result.exit_code == 0, result.stderr
    assert "force_sync" in result.stdout and "succeeded" in result.stdout


def test_stop_wait_json_is_one_document_with_the_final_command(live, run):
    with live.agent():
        result = run("stop", "--wait", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["mode"] == "halted" and doc["command"]["status"] == "succeeded"


def test_wait_without_an_agent_times_out_with_124_and_says_why(live, run):
    result = run("pause", "--wait", "--timeout", "0.3")
    assert result.exit_code == 124
    assert "still queued" in result.stderr and "agent connected" in result.stderr
    assert "paused" in result.stdout  # the pause itself is committed
    assert live.commands("pause")[0]["status"] == "queued"


def test_timeout_without_wait_is_a_usage_error_and_sends_nothing(live, run):
    result = run("stop", "--timeout", "5")
    assert result.exit_code == 2 and "--wait" in result.stderr
    assert live.commands() == []


def test_a_viewer_token_cannot_stop_exit_4(live, run):
    result = run("stop", env={"SIGNALOS_TOKEN": live.token("viewer")})
    assert result.exit_code == 4
    assert "operator role" in result.stderr
    assert live.commands() == []
