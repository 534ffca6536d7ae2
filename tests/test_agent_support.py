"""Helpers shared by the agent tests (this module holds no tests).

`CountingBroker` is a real PaperBroker whose prices move only when a test says so, counting
the trading calls, so a test can show that a command was not executed twice. `command()`
builds a command as the daemon sends it. `FakeDaemon` is a small /ws/agent server speaking
just enough of docs/agent.md: it answers `authenticate` (4401 for a wrong token) and `hello`,
records everything the agent sends, and lets a test send commands or close the connection.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from signalos_cli.agent.broker import Deal
from signalos_cli.agent.executor import Executor
from signalos_cli.agent.journal import Journal
from signalos_cli.agent.paper import PaperBroker
from signalos_cli.agent.paper_market import DEFAULT_SYMBOLS

TOKEN = "agent-token-for-tests"
WAIT = 5.0  # upper bound only: a passing test never waits this long
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CALM = {name: replace(s, volatility=0.0) for name, s in DEFAULT_SYMBOLS.items()}
_ids = itertools.count(1)


class CountingBroker(PaperBroker):
    """A paper broker whose prices stand still unless set, counting trading calls."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("symbols", CALM)
        kwargs.setdefault("clock", lambda: NOW)
        super().__init__(**kwargs)
        self.calls: list[str] = []

    def open_position(self, *args: Any, **kwargs: Any) -> Deal:
        self.calls.append("open")
        return super().open_position(*args, **kwargs)

    def close_position(self, ticket: int, volume: float | None = None) -> Deal:
        self.calls.append("close")
        return super().close_position(ticket, volume)

    def modify_position(self, ticket: int, sl: float | None, tp: float | None) -> None:
        self.calls.append("modify")
        super().modify_position(ticket, sl, tp)


def command(
    type_: str,
    params: dict[str, Any] | None = None,
    *,
    trade_id: int | None = None,
    expires_at: str | None = None,
    id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": id or f"cmd-{next(_ids)}",
        "type": type_,
        "trade_id": trade_id,
        "params": params or {},
        "expires_at": expires_at,
        "attempt": 1,
    }


def in_future(seconds: float = 60) -> str:
    return (NOW + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def open_params(side: str = "buy", volume: float = 0.1, **kw: Any) -> dict[str, Any]:
    return {"symbol": "EURUSD", "side": side, "volume": volume, "sl": None, "tp": [],
            "signal_id": 1} | kw  # fmt: skip


def make_executor(tmp_path: Path, broker: PaperBroker | None = None) -> Executor:
    return Executor(broker or CountingBroker(), Journal.open(tmp_path), now=lambda: NOW)


def open_trade(ex: Executor, **kw: Any) -> int:
    """Open a position through the executor; its ticket."""
    result = ex.execute(command("open_trade", open_params(**kw), trade_id=7)).result
    assert result["ok"], result
    return int(result["data"]["ticket"])


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
