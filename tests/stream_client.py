"""Helpers shared by the /ws tests (this module holds no tests).

`Stream` wraps one client WebSocket on /ws and speaks the protocol; `Stream.sync()` is the
barrier the tests rely on instead of sleeping: a `ping` is answered only after everything the
server queued for this connection before it (the replay included), so the messages received
before its `pong` are exactly what the server had to say up to that point.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType

from signalosd.app import create_app
from signalosd.clock import ManualClock
from tests.conftest import Harness, make_settings

TIMEOUT = 5.0  # a generous upper bound: a passing test never waits this long
_pings = itertools.count(1)


class Stream:
    """One client connection to /ws."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, type_: str, data: dict[str, Any] | None = None) -> None:
        await self.ws.send_str(json.dumps({"type": type_, "data": data or {}}))

    async def recv(self, within: float = TIMEOUT) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=within)
        assert msg.type is WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
        return json.loads(msg.data)

    async def authenticate(self, token: str) -> dict[str, Any]:
        await self.send("authenticate", {"token": token})
        reply = await self.recv()
        assert reply["type"] == "authenticated", reply
        return reply["data"]

    async def subscribe(self, **data: Any) -> None:
        await self.send("subscribe", data)

    async def sync(self) -> list[dict[str, Any]]:
        """Every message the server sends before answering a fresh ping."""
        stamp = f"sync-{next(_pings)}"
        await self.send("ping", {"timestamp": stamp})
        got = []
        while True:
            msg = await self.recv()
            if msg["type"] == "pong" and msg["data"]["timestamp"] == stamp:
                return got
            got.append(msg)

    async def events_through(self, seq: int) -> list[dict[str, Any]]:
        """Read until the event with `seq` (or a later one) arrives; return the events read."""
        got = []
        while not got or got[-1]["seq"] < seq:
            msg = await self.recv()
            if "seq" in msg:
                got.append(msg)
        return got

    async def close_code(self) -> tuple[int | None, list[dict[str, Any]]]:
        """Read to the end of the connection: (close code, the text messages before it)."""
        texts = []
        while (msg := await self.ws.receive(timeout=TIMEOUT)).type is WSMsgType.TEXT:
            texts.append(json.loads(msg.data))
        return self.ws.close_code, texts


@asynccontextmanager
async def open_stream(daemon: Harness, token: str | None = None) -> AsyncIterator[Stream]:
    """A /ws connection, authenticated when `token` is given; closed on exit."""
    ws = await daemon.client.ws_connect("/ws")
    try:
        stream = Stream(ws)
        if token is not None:
            await stream.authenticate(token)
        yield stream
    finally:
        await ws.close()


async def until(condition: Callable[[], bool], within: float = TIMEOUT) -> None:
    """Poll server state that offers nothing to await (bus counters, open connections)."""
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.005)


def seqs(messages: list[dict[str, Any]]) -> list[int]:
    return [m["seq"] for m in messages if "seq" in m]


def kinds(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages]


async def append_events(
    daemon: Harness,
    n: int,
    account: str | None = "default",
    type_: str = "test_event",
    pad: int = 0,
) -> list[int]:
    """Commit `n` events in one transaction (published after COMMIT); their seqs."""
    account_id = None if account is None else await daemon.account_id(account)

    def work(tx: Any) -> list[int]:
        return [
            tx.append_event(account_id, type_, {"i": i, "pad": "x" * pad}, {"kind": "system"}).seq
            for i in range(n)
        ]

    return list(await daemon.db.write(work))


async def head_seq(daemon: Harness) -> int:
    return int(await daemon.db.read(lambda tx: tx.head_seq()))


async def start_daemon(
    aiohttp_client: Any, tmp_path: Path, clock: ManualClock, **overrides: Any
) -> Harness:
    """A daemon like the `daemon` fixture's, with some settings changed."""
    app = create_app(make_settings(tmp_path, **overrides), clock)
    return Harness(await aiohttp_client(app), app, clock)
