"""A stand-in for the daemon's /ws/agent end, to test the real agent against (this module holds
no tests).

`FakeDaemon` is a small /ws/agent server speaking just enough of docs/agent.md: it answers
`authenticate` (4401 for a wrong token) and `hello`, records everything the agent sends in a
`Conn` per connection, and lets a test send commands or close the connection.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

TOKEN = "agent-token-for-tests"
WAIT = 5.0  # upper bound only: a passing test never waits this long


class Conn:
    """One agent connection as the fake daemon sees it."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()

    async def record(self, msg: dict[str, Any]) -> None:
        async with self._arrived:
            self.received.append(msg)
            self._arrived.notify_all()

    def types(self) -> list[str]:
        return [m["type"] for m in self.received]

    async def wait_for(self, type_: str, count: int = 1) -> list[dict[str, Any]]:
        """The first `count` messages of this type (waits until they arrived)."""

        def have() -> bool:
            return sum(m["type"] == type_ for m in self.received) >= count

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(have), WAIT)
        return [m for m in self.received if m["type"] == type_][:count]

    async def send(self, type_: str, data: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps({"id": "s1", "type": type_, "data": data,
                                           "timestamp": "2026-01-05T09:00:00.000Z"}))  # fmt: skip

    async def command(self, cmd: dict[str, Any]) -> None:
        await self.send("command", cmd)


class FakeDaemon:
    def __init__(self) -> None:
        self.conns: list[Conn] = []
        self.new_conn = asyncio.Queue[Conn]()
        self.close_after_welcome: int | None = None

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = Conn(ws)
        self.conns.append(conn)
        self.new_conn.put_nowait(conn)
        async for msg in ws:
            data = json.loads(msg.data)
            await conn.record(data)
            if data["type"] == "authenticate":
                if data["data"].get("token") != TOKEN:
                    await conn.send("error", {"code": "unauthorized", "message": "bad token"})
                    await ws.close(code=4401, message=b"authentication failed")
                    break
                await conn.send("authenticated", {"account": "default", "role": "agent"})
            elif data["type"] == "hello":
                await conn.send("welcome", {"session_id": f"s{len(self.conns)}"})
                if self.close_after_welcome is not None:
                    await ws.close(code=self.close_after_welcome, message=b"bye")
                    break
        return ws

    @classmethod
    async def start(cls, aiohttp_server: Any) -> FakeDaemon:
        fake = cls()
        app = web.Application()
        app.router.add_get("/ws/agent", fake.handler)
        server = await aiohttp_server(app, host="127.0.0.1")
        fake.url = str(server.make_url("/"))
        return fake

    async def conn(self) -> Conn:
        return await asyncio.wait_for(self.new_conn.get(), WAIT)
