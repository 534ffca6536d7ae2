"""The agent's connection, against a small fake /ws/agent server on a real loopback socket
(`FakeDaemon` in tests/fake_daemon.py)."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest
from aiohttp import WSCloseCode

from signalos_cli.agent.broker import Deal
from signalos_cli.agent.connection import AuthFailed, Replaced, agent_url
from signalos_cli.agent.journal import Journal
from signalos_cli.agent.options import Options, backoff
from signalos_cli.agent.queues import Kind
from signalos_cli.agent.runner import Agent
from signalosd.models import AgentHello, CommandResult, SyncSnapshot, TradeUpdate
from tests.counting_broker import CountingBroker, command, open_params
from tests.fake_daemon import TOKEN, WAIT, FakeDaemon


@pytest.fixture
async def fake(aiohttp_server):
    return await FakeDaemon.start(aiohttp_server)


class Gate:
    """Injected sleep: reconnect backoffs wait for the test to open the gate; short sleeps
    (poll and status loops) really sleep."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.waiting = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        if seconds < 100:
            await asyncio.sleep(seconds)
            return
        self.waiting.set()
        await self.open.wait()
        self.open.clear()


@pytest.fixture
async def make_agent(tmp_path):
    made: list[tuple[Agent, asyncio.Event, asyncio.Task]] = []
    states: list[str] = []

    def make(broker=None, token=TOKEN, url=None, **opts):
        gate = opts.pop("gate", None)
        initial = opts.pop("backoff_initial", 0.01)
        options = Options(
            poll_interval=0.02, status_interval=opts.pop("status_interval", 60.0),
            backoff_initial=initial, backoff_max=initial * 2, random=lambda: 0.0,
            on_state=states.append, sleep=gate.sleep if gate else asyncio.sleep, **opts,
        )  # fmt: skip
        agent = Agent(broker or CountingBroker(), Journal.open(tmp_path), options)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(url, token, stop))
        made.append((agent, stop, task))
        return agent, stop, task

    make.states = states
    yield make
    for agent, stop, task in made:
        stop.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, WAIT)
        agent.journal.close()


async def test_handshake_is_authenticate_hello_then_a_snapshot(fake, make_agent):
    broker = CountingBroker()
    broker.open_position("EURUSD", "buy", 0.1, None, None)
    make_agent(broker, url=fake.url)
    conn = await fake.conn()
    (snap,) = await conn.wait_for("sync_snapshot")

    assert conn.types()[:4] == ["authenticate", "hello", "agent_state", "sync_snapshot"]
    assert conn.received[0]["data"] == {"token": TOKEN}
    assert AgentHello.model_validate(conn.received[1]["data"]).broker == "paper"
    snapshot = SyncSnapshot.model_validate(snap["data"])
    assert [p.ticket for p in snapshot.positions] == [broker.positions()[0].ticket]
    assert snapshot.account is not None and snapshot.account.balance == 10_000
    assert "connected (session s1)" in make_agent.states


async def test_command_is_acked_then_its_result_then_the_new_position(fake, make_agent):
    make_agent(url=fake.url)
    conn = await fake.conn()
    await conn.wait_for("sync_snapshot")
    cmd = command("open_trade", open_params(), trade_id=5)
    await conn.command(cmd)
    (update,) = await conn.wait_for("trade_update")

    after = conn.types()[4:]
    assert after[:3] == ["ack", "command_result", "trade_update"]
    assert conn.received[4]["data"] == {"messageId": cmd["id"]}
    result = CommandResult.model_validate(conn.received[5]["data"])
    assert result.ok and result.command_id == cmd["id"]
    assert TradeUpdate.model_validate(update["data"]).trade_id == 5


async def test_redelivered_command_resends_the_stored_result_without_executing(fake, make_agent):
    agent, _, _ = make_agent(url=fake.url)
    conn = await fake.conn()
    await conn.wait_for("sync_snapshot")
    cmd = command("open_trade", open_params())
    await conn.command(cmd)
    (first,) = await conn.wait_for("command_result")
    await conn.command(cmd)
    results = await conn.wait_for("command_result", 2)

    assert results[1]["data"] == first["data"]
    assert len(await conn.wait_for("ack", 2)) == 2
    assert agent.broker.calls == ["open"]


class Slow(CountingBroker):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def open_position(self, *args, **kwargs) -> Deal:
        assert self.release.wait(WAIT)
        return super().open_position(*args, **kwargs)


async def test_reconnect_sends_a_fresh_snapshot_then_the_reports_queued_offline(fake, make_agent):
    broker, gate = Slow(), Gate()
    agent, _, _ = make_agent(broker, url=fake.url, gate=gate, backoff_initial=1000.0)
    conn = await fake.conn()
    await conn.wait_for("sync_snapshot")
    cmd = command("open_trade", open_params(), trade_id=11)
    await conn.command(cmd)
    await conn.wait_for("ack")
    await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"daemon restarting")
    await asyncio.wait_for(gate.waiting.wait(), WAIT)  # disconnected, waiting to reconnect

    broker.release.set()  # the command finishes while offline
    for _ in range(500):
        if any(i.kind is Kind.RESULT for i in agent.report_queue.items()):
            break
        await asyncio.sleep(0.01)
    gate.open.set()
    second = await fake.conn()
    await second.wait_for("trade_update")

    assert second.types()[:6] == [
        "authenticate",
        "hello",
        "agent_state",
        "sync_snapshot",
        "command_result",
        "trade_update",
    ]
    snapshot = second.received[3]["data"]
    assert [p["trade_id"] for p in snapshot["positions"]] == [11]
    assert second.received[4]["data"]["command_id"] == cmd["id"]
    assert any("disconnected: closed with code 1001" in s for s in make_agent.states)


async def test_bad_token_stops_the_agent(fake, make_agent):
    _, _, task = make_agent(url=fake.url, token="wrong")
    with pytest.raises(AuthFailed, match="refused the agent token"):
        await asyncio.wait_for(task, WAIT)
    assert len(fake.conns) == 1  # never retried


async def test_replaced_session_stops_the_agent(fake, make_agent):
    fake.close_after_welcome = 4409
    _, _, task = make_agent(url=fake.url)
    with pytest.raises(Replaced, match="replaced by a newer agent session"):
        await asyncio.wait_for(task, WAIT)


async def test_unreachable_daemon_is_retried_with_backoff(make_agent, unused_tcp_port):
    gate = Gate()
    make_agent(url=f"http://127.0.0.1:{unused_tcp_port}", gate=gate, backoff_initial=1000.0)
    await asyncio.wait_for(gate.waiting.wait(), WAIT)
    gate.waiting.clear()
    gate.open.set()
    await asyncio.wait_for(gate.waiting.wait(), WAIT)
    errors = [s for s in make_agent.states if s.startswith("error:")]
    assert errors[0].endswith("(attempt 1)") and errors[1].endswith("(attempt 2)")


async def test_stop_closes_the_connection_normally(fake, make_agent):
    _, stop, task = make_agent(url=fake.url)
    conn = await fake.conn()
    await conn.wait_for("sync_snapshot")
    stop.set()
    await asyncio.wait_for(task, WAIT)
    assert conn.ws.close_code == 1000
    assert make_agent.states[-1] == "stopped"
    assert not any(s.startswith("disconnected") for s in make_agent.states)


@pytest.mark.parametrize(("expires_at", "ok"), [("09:00:30", True), ("08:59:59", False)])
async def test_expiry_is_judged_by_the_daemon_clock_not_the_desktop_clock(
    fake, make_agent, expires_at, ok
):
    make_agent(url=fake.url)  # the fake daemon's clock says 2026-01-05 09:00, ours says today
    conn = await fake.conn()
    await conn.wait_for("sync_snapshot")
    stamp = f"2026-01-05T{expires_at}.000Z"
    await conn.command(command("open_trade", open_params(), expires_at=stamp))
    (result,) = await conn.wait_for("command_result")
    assert result["data"]["ok"] is ok


async def test_status_updates_are_sent_while_connected(fake, make_agent):
    make_agent(url=fake.url, status_interval=0.05)
    conn = await fake.conn()
    (status,) = await conn.wait_for("mt5_status_update")
    assert status["data"]["server"] == "SignalOS-Paper"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8787", "ws://127.0.0.1:8787/ws/agent"),
        ("https://desk.example/signalos/", "wss://desk.example/signalos/ws/agent"),
        ("ws://h:1/ws/agent", "ws://h:1/ws/agent"),
    ],
)
def test_agent_url_converts_the_scheme_and_adds_the_path(url, expected):
    assert agent_url(url) == expected


def test_backoff_doubles_up_to_the_ceiling_with_jitter():
    options = Options(random=lambda: 1.0)
    assert [backoff(n, options) for n in (1, 2, 3, 6, 9)] == [1, 2, 4, 30, 30]
    assert backoff(3, Options(random=lambda: 0.0)) == 2
