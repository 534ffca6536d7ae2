"""End to end: the real daemon and the real agent (paper broker), over real loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from signalos_cli.agent.runner import Options, run_agent
from signalosd import keys
from tests.counting_broker import CountingBroker
from tests.stream_client import open_stream

SIGNAL = {"symbol": "EURUSD", "side": "buy", "volume": 0.2, "sl": 1.05, "tp": [1.2]}
FAST = dict(poll_interval=0.05, status_interval=0.5, backoff_initial=0.05, backoff_max=0.1)


@asynccontextmanager
async def agent(daemon, broker: CountingBroker, state: Path) -> AsyncIterator[None]:
    """The real agent connected to the test daemon until the block ends."""
    token = getattr(daemon, "_agent_token", None) or await daemon.token("agent", label="desk")
    daemon._agent_token = token
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_agent(daemon.url("/"), token, broker, state, options=Options(**FAST), stop=stop)
    )
    hub = daemon.app[keys.AGENTS]
    account = await daemon.account_id()
    try:
        async with asyncio.timeout(5):
            while hub.session(account) is None:
                await asyncio.sleep(0.01)
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        async with asyncio.timeout(5):
            while hub.session(account) is not None:
                await asyncio.sleep(0.01)


async def wait_status(daemon, command_id: str, within: float = 5) -> dict[str, Any]:
    _, body = await daemon.request("GET", f"/api/commands/{command_id}?wait={within}", daemon.admin)
    return dict(body["command"])


async def trade(daemon, trade_id: int) -> dict[str, Any]:
    _, body = await daemon.request("GET", f"/api/trades/{trade_id}", daemon.admin)
    return dict(body)


async def until_trade(daemon, trade_id: int, status: str, within: float = 5) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while (t := await trade(daemon, trade_id))["status"] != status:
            await asyncio.sleep(0.02)
    return t


async def post(daemon, path: str, body: dict | None = None, method: str = "POST") -> dict:
    status, reply = await daemon.request(method, path, daemon.admin, json=body or {})
    assert status in (200, 202), reply
    return dict(reply)


async def force_sync_done(daemon) -> str:
    """Queue a `force_sync` and wait until the agent has executed it; its id.

    The proof that something was *not* executed (never "wait a while, see nothing"): the
    daemon delivers an account's commands in order and the agent executes them in order, so
    once this later one has succeeded, everything sent before it was handled."""
    reply = await post(daemon, "/api/firebridge/force-sync")
    command_id = str(reply["command"]["id"])
    assert (await wait_status(daemon, command_id))["status"] == "succeeded"
    return command_id


@pytest.fixture
def broker() -> CountingBroker:
    return CountingBroker()


async def test_a_signal_opens_a_trade_and_a_close_closes_it_seen_by_a_subscriber(
    daemon, broker, tmp_path
):
    async with open_stream(daemon, daemon.admin) as stream, agent(daemon, broker, tmp_path):
        await stream.subscribe(types=["trade_opened", "trade_closed"])
        await stream.sync()
        reply = await post(daemon, "/api/signals", SIGNAL)
        trade_id = reply["command"]["trade_id"]
        assert (await wait_status(daemon, reply["command"]["id"]))["status"] == "succeeded"
        opened = await until_trade(daemon, trade_id, "open")
        assert opened["ticket"] == broker.positions()[0].ticket
        assert opened["sl"] == 1.05 and opened["tp"] == 1.2

        close = await post(daemon, f"/api/trades/{trade_id}/close")
        assert (await wait_status(daemon, close["command"]["id"]))["status"] == "succeeded"
        closed = await until_trade(daemon, trade_id, "closed")
        assert broker.positions() == []
        seen = await stream.events_through(0)
        while not any(m["type"] == "trade_closed" for m in seen):
            seen += await stream.events_through(0)
        kinds = [(m["type"], m["data"]["id"]) for m in seen]
        assert kinds[0] == ("trade_opened", trade_id)
        assert ("trade_closed", trade_id) in kinds
        assert closed["close_reason"]


async def test_commands_queued_while_the_agent_is_away_run_once_in_order(daemon, broker, tmp_path):
    async with agent(daemon, broker, tmp_path):
        reply = await post(daemon, "/api/signals", SIGNAL)
        trade_id = reply["command"]["trade_id"]
        await until_trade(daemon, trade_id, "open")
    queued = [
        (await post(daemon, f"/api/trades/{trade_id}/modify", {"sl": 1.06}, "PUT"))["command"][
            "id"
        ],
        (await post(daemon, f"/api/trades/{trade_id}/partial-close", {"fraction": 0.5}))["command"][
            "id"
        ],
        (await post(daemon, f"/api/trades/{trade_id}/trailing-stop", {"distance": 0.01}))[
            "command"
        ]["id"],
    ]
    broker.calls.clear()
    async with agent(daemon, broker, tmp_path):
        for command_id in queued:
            assert (await wait_status(daemon, command_id))["status"] == "succeeded"
    # modify, partial close, then the trailing stop pulls the SL up to price - distance once;
    # nothing ran twice.
    assert broker.calls == ["modify", "close", "modify"]
    done = [
        e["data"]["command_id"]
        for e in await daemon.events()
        if e["type"] == "command_succeeded" and e["data"]["command_id"] in queued
    ]
    assert done == queued
    assert broker.positions()[0].volume == pytest.approx(0.1)


async def test_a_duplicated_delivery_runs_once(daemon, broker, tmp_path):
    async with agent(daemon, broker, tmp_path):
        reply = await post(daemon, "/api/signals", SIGNAL)
        command = await wait_status(daemon, reply["command"]["id"])
        assert command["status"] == "succeeded"
        session = daemon.app[keys.AGENTS].session(await daemon.account_id())
        session.send_command(command | {"status": "sent"})  # the same command again
        later = await force_sync_done(daemon)
    assert broker.calls == ["open"]
    assert len(broker.positions()) == 1
    results = [e for e in await daemon.events() if e["type"] == "command_succeeded"]
    assert [e["data"]["command_id"] for e in results] == [command["id"], later]


async def test_emergency_stop_overtakes_queued_commands_and_cancels_queued_entries(
    daemon, broker, tmp_path
):
    async with agent(daemon, broker, tmp_path):
        reply = await post(daemon, "/api/signals", SIGNAL)
        await until_trade(daemon, reply["command"]["trade_id"], "open")
    sync = await post(daemon, "/api/firebridge/force-sync")
    entry = await post(daemon, "/api/signals", SIGNAL | {"symbol": "GBPUSD"})
    stop = await post(daemon, "/api/trading/emergency-stop", {"close_all": True})
    broker.calls.clear()
    async with agent(daemon, broker, tmp_path):
        assert (await wait_status(daemon, stop["command"]["id"]))["status"] == "succeeded"
        assert (await wait_status(daemon, sync["command"]["id"]))["status"] == "succeeded"
    assert (await wait_status(daemon, entry["command"]["id"], 0))["status"] == "cancelled"
    assert broker.calls == ["close"]  # flattened; the cancelled entry never opened
    assert broker.positions() == []
    order = [e["data"]["command_id"] for e in await daemon.events() if e["type"] == "command_sent"]
    assert order.index(stop["command"]["id"]) < order.index(sync["command"]["id"])


async def test_an_expired_entry_is_never_executed(daemon, broker, tmp_path):
    reply = await post(daemon, "/api/signals", SIGNAL)
    daemon.clock.advance(daemon.settings.open_trade_ttl_s + 1)
    async with agent(daemon, broker, tmp_path):
        await force_sync_done(daemon)
    assert (await wait_status(daemon, reply["command"]["id"], 0))["status"] == "expired"
    assert broker.calls == [] and broker.positions() == []


@pytest.mark.parametrize("control", [("pause", {}), ("emergency-stop", {})])
async def test_while_paused_or_halted_signals_are_skipped_and_nothing_opens(
    daemon, broker, tmp_path, control
):
    async with agent(daemon, broker, tmp_path):
        await post(daemon, f"/api/trading/{control[0]}", control[1])
        reply = await post(daemon, "/api/signals", SIGNAL)
        assert reply["signal"]["status"] == "skipped"
        await force_sync_done(daemon)
    assert broker.calls == [] and broker.positions() == []


async def test_sync_reconciles_a_position_closed_behind_the_daemons_back_and_one_opened_by_hand(
    daemon, broker, tmp_path
):
    async with agent(daemon, broker, tmp_path):
        reply = await post(daemon, "/api/signals", SIGNAL)
        trade_id = reply["command"]["trade_id"]
        await until_trade(daemon, trade_id, "open")
    ticket = broker.positions()[0].ticket
    broker.close_position(ticket)  # closed in the terminal while the agent was away
    by_hand = broker.open_position(
        "XAUUSD", (broker.positions and "buy") or "sell", 0.01, None, None
    )  # opened by hand
    async with agent(daemon, broker, tmp_path):
        async with asyncio.timeout(5):
            while not [
                e
                for e in await daemon.events()
                if e["type"] == "sync_completed" and e["data"]["adopted"]
            ]:
                await asyncio.sleep(0.02)
    closed = await trade(daemon, trade_id)
    assert closed["status"] == "closed"
    _, listed = await daemon.request("GET", "/api/trades", daemon.admin)
    adopted = [t for t in listed["trades"] if t["ticket"] == by_hand.ticket]
    assert adopted and adopted[0]["symbol"] == "XAUUSD" and adopted[0]["status"] == "open"
