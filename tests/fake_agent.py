"""A protocol-level stand-in for the desktop agent, to test the daemon's side of /ws/agent.

It speaks the wire protocol of docs/agent.md directly, so these tests pin the daemon's
behaviour independently of the real agent (which has its own tests and end-to-end tests).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType

from tests.conftest import Harness

TIMEOUT = 5.0


def position(ticket: int, **fields: Any) -> dict[str, Any]:
    return {
        "ticket": ticket,
        "symbol": "EURUSD",
        "type": "buy",
        "volume": 0.1,
        "price_open": 1.1,
        "price_current": 1.1005,
        "sl": None,
        "tp": None,
        "profit": 5.0,
        "swap": 0.0,
        "time": "2026-01-05T09:00:00.000Z",
    } | fields


class WireAgent:
    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws
        self.welcome: dict[str, Any] = {}

    async def send(self, type_: str, data: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps({"type": type_, "data": data}))

    async def recv(self, within: float = TIMEOUT) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=within)
        assert msg.type is WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
        return json.loads(msg.data)

    async def command(self, within: float = TIMEOUT) -> dict[str, Any]:
        """The next command (skipping other frames)."""
        while True:
            msg = await self.recv(within)
            if msg["type"] == "command":
                assert msg["id"] == msg["data"]["id"]
                return msg["data"]

    async def next_command_is(self, command_id: str) -> dict[str, Any]:
        """The next command, which must be `command_id` (the whole frame in the failure if not)."""
        command = await self.command()
        assert command["id"] == command_id, command
        return command

    async def sync(self) -> None:
        """Round trip: everything sent before has been received by the daemon."""
        await self.send("ping", {"timestamp": "sync"})
        while (await self.recv())["type"] != "pong":
            pass

    async def result(self, command_id: str, ok: bool = True, **fields: Any) -> None:
        await self.send("command_result", {"command_id": command_id, "ok": ok} | fields)

    async def close(self) -> None:
        await self.ws.close()


async def connect_agent(
    daemon: Harness, token: str, *, broker: str = "paper", snapshot: list | None = None
) -> WireAgent:
    ws = await daemon.client.ws_connect("/ws/agent")
    agent = WireAgent(ws)
    await agent.send("authenticate", {"token": token})
    assert (await agent.recv())["type"] == "authenticated"
    await agent.send(
        "hello", {"agent_version": "test", "broker": broker, "login": 42, "server": "Paper-Demo"}
    )
    welcome = await agent.recv()
    assert welcome["type"] == "welcome", welcome
    agent.welcome = welcome["data"]
    if snapshot is not None:
        await agent.send("sync_snapshot", {"positions": snapshot})
    return agent


async def force_sync(daemon: Harness) -> str:
    """Queue a `force_sync` command; its id.

    The proof that something was *not* sent (never "wait a while, see nothing"): commands reach
    an account's agent in order, so when the next command an agent receives is one queued
    later, nothing queued before it was sent in between."""
    status, reply = await daemon.request("POST", "/api/firebridge/force-sync", daemon.admin)
    assert status == 202, reply
    return str(reply["command"]["id"])


async def until(condition: Any, within: float = TIMEOUT) -> None:
    async with asyncio.timeout(within):
        while not await condition():
            await asyncio.sleep(0.01)


async def command_status(daemon: Harness, command_id: str) -> str:
    _, body = await daemon.request("GET", f"/api/commands/{command_id}", daemon.admin)
    return str(body["command"]["status"])
