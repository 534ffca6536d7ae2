"""The fence as a property of the protocol (issue 9 §1): halt generations on every command and
in `welcome`, the agent refusing what came before the newest stop it knows, whatever order
frames arrive in, and the agent's mode converging on the daemon's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from signalos_cli.agent.journal import Journal
from signalos_cli.agent.queues import CommandQueue
from signalos_cli.agent.runner import Agent, Options
from signalosd.app import create_app
from signalosd.models import Mode
from tests.conftest import Harness, make_settings
from tests.counting_broker import CountingBroker, command, in_future, make_executor, open_params
from tests.fake_agent import connect_agent, position, until
from tests.fake_daemon import TOKEN, WAIT, FakeDaemon
from tests.fault_injection import GatedBroker

# ---- the executor: what an agent refuses ----------------------------------------------------


# What the fence stops: an entry, and a resume (which would lift the halt).
FENCED = pytest.mark.parametrize(
    ("type_", "params"), [("open_trade", open_params()), ("resume", {"from_halt": True})]
)


def _fenced(tmp_path: Path, known: int):  # type: ignore[no-untyped-def]
    ex = make_executor(tmp_path)
    ex.journal.fence(known)
    ex.journal.set_mode(Mode.RUNNING)  # resumed from the halt since (a resume of gen `known`)
    return ex


@FENCED
def test_an_entry_or_resume_from_before_the_newest_stop_is_refused(tmp_path, type_, params):
    ex = _fenced(tmp_path, known=3)
    result = ex.execute(command(type_, params, expires_at=in_future()) | {"halt_gen": 2}).result

    assert not result["ok"]
    assert "issued before the emergency stop of halt generation 3" in result["error"]
    assert ex.broker.calls == []
    assert ex.journal.mode is Mode.RUNNING  # the stale resume changed nothing either


@FENCED
def test_an_entry_or_resume_of_the_current_generation_runs(tmp_path, type_, params):
    ex = _fenced(tmp_path, known=3)
    result = ex.execute(command(type_, params, expires_at=in_future()) | {"halt_gen": 3}).result

    assert result["ok"], result


def test_other_commands_from_before_a_stop_still_run(tmp_path):
    """Closing, modifying, pausing never open a position or lift a halt: the fence lets them
    through (a close issued just before a stop must still close)."""
    ex = make_executor(tmp_path)
    opened = ex.execute(command("open_trade", open_params(), expires_at=in_future()))
    ticket = opened.result["data"]["ticket"]
    ex.journal.fence(1)
    close = command("close_trade", {"ticket": ticket}, expires_at=in_future()) | {"halt_gen": 0}

    assert ex.execute(close).result["ok"]
    assert ex.broker.positions() == []


def test_a_stop_raises_the_fence_before_anything_else_it_does(tmp_path):
    ex = make_executor(tmp_path)
    stop = command("emergency_stop", {"close_all": False}) | {"halt_gen": 4}

    assert ex.execute(stop).result["ok"]
    assert (ex.journal.mode, ex.journal.halt_gen) == (Mode.HALTED, 4)


def test_the_fence_never_goes_down_and_survives_a_restart(tmp_path):
    journal = Journal.open(tmp_path)
    journal.fence(5)
    journal.fence(2)  # an old stop redelivered late
    journal.close()
    again = Journal.open(tmp_path)
    try:
        assert (again.mode, again.halt_gen) == (Mode.HALTED, 5)
    finally:
        again.close()


def test_welcome_replaces_mode_and_generation(tmp_path):
    journal = Journal.open(tmp_path)
    try:
        journal.fence(5)
        journal.adopt(Mode.RUNNING, 2)  # the daemon's database was restored from before
        assert (journal.mode, journal.halt_gen) == (Mode.RUNNING, 2)
    finally:
        journal.close()


def test_stops_are_kept_in_the_journal_for_good(tmp_path):
    """The daemon redelivers an unfinished stop however old; the agent must still know it ran."""
    journal = Journal.open(tmp_path)
    for command_id, type_ in (("old-stop", "emergency_stop"), ("old-close", "close_trade")):
        journal.begin(command_id, type_)
        journal.finish(command_id, {"command_id": command_id, "ok": True})
    journal._write("UPDATE executed SET executed_at = '2000-01-01T00:00:00.000Z'")
    journal.close()
    again = Journal.open(tmp_path)
    try:
        assert again.executed("old-stop") is not None
        assert again.executed("old-close") is None
    finally:
        again.close()


def test_a_lost_connection_drops_the_commands_not_yet_started_but_stops():
    queue = CommandQueue()
    for cmd in (command("resume"), command("open_trade"), command("emergency_stop")):
        queue.put(cmd)
    stop_id = queue._items[0]["id"]

    assert queue.drop_unstarted(keep="emergency_stop") == 2
    assert [c["id"] for c in queue._items] == [stop_id]
    assert queue.put(command("resume"))  # a redelivery is queued afresh


# ---- the real agent against frames in any order (FakeDaemon) ---------------------------------


@pytest.fixture
async def fake(aiohttp_server):  # type: ignore[no-untyped-def]
    return await FakeDaemon.start(aiohttp_server)


@asynccontextmanager
async def agent_on(fake: FakeDaemon, broker: CountingBroker, state: Path) -> AsyncIterator[Any]:
    """The real agent connected to the fake daemon: (the agent, its connection) once it sent
    its snapshot; stopped, and its journal closed, when the block ends."""
    agent = Agent(broker, Journal.open(state), Options(poll_interval=0.02, on_state=print))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(fake.url, TOKEN, stop))
    try:
        conn = await fake.conn()
        await conn.wait_for("sync_snapshot")
        yield agent, conn
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT)
        agent.journal.close()


async def test_frames_from_before_a_stop_that_arrive_after_it_open_nothing(fake, tmp_path):
    """The stop overtook an older resume and entry on the wire: the agent refuses both; what
    the daemon issues after the resume from the halt runs."""
    broker = CountingBroker()
    async with agent_on(fake, broker, tmp_path) as (_, conn):
        frames = [
            command("emergency_stop", {"close_all": True}) | {"halt_gen": 1},
            command("resume", {"from_halt": False}, expires_at=in_future(3600)) | {"halt_gen": 0},
            command("open_trade", open_params(), expires_at=in_future(3600)) | {"halt_gen": 0},
            command("resume", {"from_halt": True}, expires_at=in_future(3600)) | {"halt_gen": 1},
            command("open_trade", open_params(), expires_at=in_future(3600)) | {"halt_gen": 1},
        ]
        for frame in frames:
            await conn.command(frame)
        results = await conn.wait_for("command_result", len(frames))
    outcome = {r["data"]["command_id"]: r["data"] for r in results}
    ok = [outcome[f["id"]]["ok"] for f in frames]
    assert ok == [True, False, False, True, True]
    assert "halt generation 1" in outcome[frames[1]["id"]]["error"]
    assert broker.calls == ["open"]  # only the entry issued after the resume from the halt
    states = [m["data"] for m in conn.received if m["type"] == "agent_state"]
    assert {"mode": "halted", "halt_gen": 1}.items() <= states[1].items()  # on the stop's arrival
    assert {"mode": "running", "halt_gen": 1}.items() <= states[-1].items()


async def test_the_agent_is_fenced_as_the_stop_arrives_while_its_broker_is_busy(fake, tmp_path):
    broker = GatedBroker()
    try:
        async with agent_on(fake, broker, tmp_path) as (agent, conn):
            broker.hold("GBPUSD")
            entry = command("open_trade", open_params(symbol="GBPUSD"), expires_at=in_future(3600))
            await conn.command(entry | {"halt_gen": 0})
            await broker.wait_entered()
            await conn.command(command("emergency_stop", {}) | {"halt_gen": 1})
            await conn.wait_for("ack", 2)
            # The worker is still inside the first entry's broker call, and yet:
            assert (agent.journal.mode, agent.journal.halt_gen) == (Mode.HALTED, 1)
            broker.release()
            results = await conn.wait_for("command_result", 2)
    finally:
        broker.release()
    assert not results[0]["data"]["ok"] and "halted" in results[0]["data"]["error"]
    assert broker.calls == []


# ---- the daemon's side: generations, welcome, mismatch ---------------------------------------


async def test_every_command_carries_the_halt_generation_it_was_issued_in(daemon: Harness):
    _, before = await daemon.request("POST", "/api/trading/pause", daemon.admin)
    _, stop = await daemon.request("POST", "/api/trading/emergency-stop", daemon.admin)
    _, after = await daemon.request(
        "POST", "/api/trading/resume", daemon.admin, json={"confirm_halt": True}
    )

    assert before["command"]["halt_gen"] == 0
    assert stop["command"]["halt_gen"] == stop["halt_gen"] == 1
    assert after["command"]["halt_gen"] == after["halt_gen"] == 1
    _, state = await daemon.request("GET", "/api/trading/state", daemon.admin)
    assert state["halt_gen"] == 1
    queued = [e["data"] for e in await daemon.events() if e["type"] == "command_queued"]
    assert [q["halt_gen"] for q in queued] == [0, 1, 1]


async def test_welcome_carries_the_daemons_mode_and_halt_generation(daemon: Harness):
    token = await daemon.token("agent")
    await daemon.request("POST", "/api/trading/emergency-stop", daemon.admin)
    agent = await connect_agent(daemon, token)

    assert agent.welcome["mode"] == "halted" and agent.welcome["halt_gen"] == 1
    command = await agent.command()  # the unfinished stop follows welcome
    assert command["type"] == "emergency_stop" and command["halt_gen"] == 1


async def test_the_halt_generation_survives_a_daemon_restart(aiohttp_client, tmp_path, clock):
    settings = make_settings(tmp_path)
    app = create_app(settings, clock)
    daemon = Harness(await aiohttp_client(app), app, clock)
    await daemon.request("POST", "/api/trading/emergency-stop", daemon.admin)
    await daemon.client.close()

    app = create_app(settings, clock)
    again = Harness(await aiohttp_client(app), app, clock)
    agent = await connect_agent(again, await again.token("agent"))
    assert agent.welcome["halt_gen"] == 1
    _, resumed = await again.request(
        "POST", "/api/trading/resume", again.admin, json={"confirm_halt": True}
    )
    assert resumed["command"]["halt_gen"] == 1


async def _metrics(daemon: Harness) -> str:
    status, text = await daemon.request("GET", "/metrics", daemon.admin)
    assert status == 200, text
    return str(text)


async def _health_agent(daemon: Harness) -> dict:
    _, health = await daemon.request("GET", "/api/system/health", daemon.admin)
    return dict(health["agent"])


async def test_an_agent_whose_mode_differs_from_the_daemons_is_a_mismatch(daemon: Harness):
    agent = await connect_agent(daemon, await daemon.token("agent"))
    await daemon.request("POST", "/api/trading/emergency-stop", daemon.admin)
    command = await agent.command()
    # While the stop is unfinished a "running" agent is only behind, not wrong. (Proved once
    # a later report is applied: the agent's messages are applied in the order sent.)
    await agent.send("agent_state", {"mode": "running", "halt_gen": 0})
    await agent.send("trade_update", position(8001))

    async def applied() -> bool:
        _, body = await daemon.request("GET", "/api/trades", daemon.admin)
        return any(t["ticket"] == 8001 for t in body["trades"])

    await until(applied)
    assert (await _health_agent(daemon))["mode"] == "running"
    assert (await _health_agent(daemon))["mode_mismatch"] is False
    await agent.result(command["id"], data={"mode": "halted"})
    await agent.send("agent_state", {"mode": "running", "halt_gen": 0})  # yet it stays running

    async def flagged() -> bool:
        return bool((await _health_agent(daemon))["mode_mismatch"])

    await until(flagged)
    health = await _health_agent(daemon)
    assert (health["mode"], health["halt_gen"]) == ("running", 0)
    assert 'signalos_agent_mode_mismatch{account="default"} 1.0' in await _metrics(daemon)
    await agent.send("agent_state", {"mode": "halted", "halt_gen": 1, "clock_offset_s": 0.25})

    async def cleared() -> bool:
        return not (await _health_agent(daemon))["mode_mismatch"]

    await until(cleared)
    assert (await _health_agent(daemon))["clock_offset_s"] == 0.25
    assert 'signalos_agent_mode_mismatch{account="default"} 0.0' in await _metrics(daemon)
    kinds = [e for e in await daemon.events() if e["type"].startswith("agent_mode_")]
    assert [e["type"] for e in kinds] == ["agent_mode_mismatch", "agent_mode_converged"]
    assert kinds[0]["data"] == {
        "agent": {"mode": "running", "halt_gen": 0},
        "daemon": {"mode": "halted", "halt_gen": 1},
    }


async def test_a_mode_command_the_agent_failed_leaves_a_mismatch(daemon: Harness):
    """The agent reports its state before each result: a pause it could not apply leaves it
    running while the daemon is paused, and nothing unfinished explains that any more."""
    agent = await connect_agent(daemon, await daemon.token("agent"))
    await agent.send("agent_state", {"mode": "running", "halt_gen": 0})
    await daemon.request("POST", "/api/trading/pause", daemon.admin)
    command = await agent.command()
    await agent.send("agent_state", {"mode": "running", "halt_gen": 0})
    await agent.result(command["id"], ok=False, error="journal not writable")

    async def flagged() -> bool:
        return bool((await _health_agent(daemon))["mode_mismatch"])

    await until(flagged)
    (mismatch,) = [e for e in await daemon.events() if e["type"] == "agent_mode_mismatch"]
    assert mismatch["data"]["daemon"] == {"mode": "paused", "halt_gen": 0}
