"""Every command has a deadline, at both ends (issue 9 §2, DESIGN §3.10)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from signalos_cli.agent.journal import KEEP_EXECUTED
from signalosd.models import DEFAULT_JOURNAL_KEEP_S
from tests.conftest import Harness, make_settings
from tests.counting_broker import command, make_executor, open_params
from tests.fake_agent import WireAgent, command_status, connect_agent, until
from tests.fault_injection import GatedBroker, command_of, post, real_agent, until_status

TTL = 60.0  # command_ttl_s of these tests
AHEAD = timedelta(seconds=90)
SIGNAL = {"symbol": "EURUSD", "side": "buy", "volume": 0.1}


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    return make_settings(tmp_path, command_ttl_s=TTL, command_expiry_grace_s=5.0)


# ---- the agent refuses whatever is past its deadline ----------------------------------------


@pytest.mark.parametrize(
    ("type_", "params"),
    [
        ("close_trade", {"ticket": 1}),
        ("partial_close", {"ticket": 1, "volume": 0.05}),
        ("modify_trade", {"ticket": 1, "sl": 1.0}),
        ("trailing_stop", {"ticket": 1, "distance": 0.01}),
        ("pause", {}),
        ("resume", {"from_halt": False}),
        ("set_stealth", {"enabled": True}),
        ("force_sync", {}),
        ("open_trade", open_params()),
    ],
)
def test_the_agent_refuses_any_command_past_its_deadline(tmp_path, type_, params):
    ex = make_executor(tmp_path)
    mode, stealth = ex.journal.mode, ex.journal.stealth
    stale = command(type_, params, expires_at="2026-01-05T08:59:59.999Z")  # NOW is 09:00

    result = ex.execute(stale).result

    assert not result["ok"] and "expired before execution" in result["error"], result
    assert ex.broker.calls == []
    assert (ex.journal.mode, ex.journal.stealth) == (mode, stealth)  # nothing changed


def test_an_emergency_stop_has_no_deadline(tmp_path):
    ex = make_executor(tmp_path)
    assert ex.execute(command("emergency_stop", {}, expires_at=None)).result["ok"]


def test_a_deadline_the_agent_cannot_read_is_refused(tmp_path):
    ex = make_executor(tmp_path)
    result = ex.execute(command("pause", {}, expires_at="next tuesday")).result
    assert not result["ok"] and "invalid expires_at" in result["error"]


async def test_a_close_issued_while_the_agent_was_busy_past_its_deadline_never_runs(
    daemon: Harness, tmp_path: Path
) -> None:
    """The bug report: a close queued behind a slow broker call, the agent busy for longer
    than command_ttl_s; when it wakes up the close must not run."""
    broker = GatedBroker()
    try:
        async with real_agent(daemon, broker, tmp_path):
            entry = (await post(daemon, "/api/signals", SIGNAL))["command"]
            assert (await command_of(daemon, entry["id"], 10))["status"] == "succeeded"
            broker.hold("GBPUSD")
            await post(daemon, "/api/signals", SIGNAL | {"symbol": "GBPUSD"})
            await broker.wait_entered()  # the agent is stuck in a broker call
            close = (await post(daemon, f"/api/trades/{entry['trade_id']}/close"))["command"]
            await until_status(daemon, close["id"], "acked")
            daemon.clock.advance(TTL + 1)  # both clocks: the agent's follows the daemon's
            broker.release()
            sync = (await post(daemon, "/api/firebridge/force-sync"))["command"]["id"]
            assert (await command_of(daemon, sync, 10))["status"] == "succeeded"
            refused = await command_of(daemon, close["id"])
    finally:
        broker.release()
    assert "close" not in broker.calls
    assert len(broker.positions()) == 1  # the close expired: the position is still open
    assert refused["status"] == "failed"
    assert "expired before execution" in refused["result"]["error"]


async def test_the_agent_judges_deadlines_on_the_daemons_clock(daemon: Harness, tmp_path: Path):
    """An agent whose own clock runs 90 s ahead measures the offset at welcome, reports it,
    and does not take a fresh command for an expired one."""
    broker = GatedBroker()
    clock = daemon.clock

    async with real_agent(daemon, broker, tmp_path, now=lambda: clock.now() + AHEAD):
        reply = await post(daemon, "/api/trading/pause")
        assert (await command_of(daemon, reply["command"]["id"], 10))["status"] == "succeeded"
        _, health = await daemon.request("GET", "/api/system/health", daemon.admin)
    assert health["agent"]["clock_offset_s"] == pytest.approx(-90, abs=1)


# ---- the daemon never sends what is past its deadline ---------------------------------------


async def test_a_sent_command_past_its_deadline_is_never_sent_again_then_expires(
    daemon: Harness,
) -> None:
    agent = await connect_agent(daemon, await daemon.token("agent"))
    _, paused = await daemon.request("POST", "/api/trading/pause", daemon.admin)
    first = await agent.command()  # sent, never acked: the agent froze
    assert first["id"] == paused["command"]["id"]
    daemon.clock.advance(TTL + 1)  # past its deadline and past the ack timeout
    _, sync = await daemon.request("POST", "/api/firebridge/force-sync", daemon.admin)

    # Delivery is in order: had the pause been sent again, it would come first.
    assert (await agent.command())["id"] == sync["command"]["id"]
    assert await command_status(daemon, first["id"]) == "sent"  # still in its grace
    daemon.clock.advance(5)
    await until_status(daemon, first["id"], "expired")
    expired = await command_of(daemon, first["id"])
    assert expired["result"]["reason"].startswith("not executed before it expired at")


async def test_an_acked_command_without_a_result_expires_after_its_grace(daemon: Harness):
    agent = await connect_agent(daemon, await daemon.token("agent"))
    await daemon.request("POST", "/api/trading/pause", daemon.admin)
    command_id = (await agent.command())["id"]
    await agent.send("ack", {"messageId": command_id})
    await until_status(daemon, command_id, "acked")
    daemon.clock.advance(TTL + 5)

    await until_status(daemon, command_id, "expired")


async def test_a_late_result_of_a_command_the_daemon_gave_up_on_is_recorded(daemon: Harness):
    agent = await connect_agent(daemon, await daemon.token("agent"))
    await daemon.request("POST", "/api/trading/pause", daemon.admin)
    command_id = (await agent.command())["id"]
    daemon.clock.advance(TTL + 5)
    await until_status(daemon, command_id, "expired")
    await agent.result(command_id, data={"mode": "paused"})

    async def late_results() -> list[dict]:
        return [e for e in await daemon.events() if e["type"] == "command_late_result"]

    await until(late_results)
    late = await late_results()
    assert [e["data"]["command_id"] for e in late] == [command_id]
    assert late[0]["data"]["status"] == "expired"
    assert await command_status(daemon, command_id) == "expired"  # the story is not rewritten


async def test_nothing_older_than_the_agents_journal_is_sent(daemon: Harness) -> None:
    """An agent that keeps executed ids for 60 s: a command created before that is never sent
    (it might run twice), an emergency stop still is (agents keep those for good)."""
    trade_id = await daemon.add_trade()
    _, close = await daemon.request("POST", f"/api/trades/{trade_id}/close", daemon.admin)
    _, stop = await daemon.request("POST", "/api/trading/emergency-stop", daemon.admin)
    daemon.clock.advance(59)  # within command_ttl_s (60): not expired by its deadline
    token = await daemon.token("agent")
    agent = WireAgent(await daemon.client.ws_connect("/ws/agent"))
    await agent.send("authenticate", {"token": token})
    await agent.recv()
    await agent.send("hello", {"agent_version": "t", "broker": "paper", "journal_keep_s": 30})
    assert (await agent.recv())["type"] == "welcome"

    assert (await agent.command())["id"] == stop["command"]["id"]
    await until_status(daemon, close["command"]["id"], "expired")
    expired = await command_of(daemon, close["command"]["id"])
    assert "before the oldest command the agent still remembers" in expired["result"]["reason"]


def test_the_default_journal_window_is_what_the_agent_keeps():
    assert KEEP_EXECUTED.total_seconds() == DEFAULT_JOURNAL_KEEP_S
