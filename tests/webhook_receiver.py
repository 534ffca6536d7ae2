"""A real webhook receiver for the tests (this module holds no tests): an aiohttp server on
127.0.0.1 that records every request (body bytes, headers, path, query), can answer the first
`fail_first` attempts with 500, and can hang: accept the request and never answer it.

Tests wait on what it recorded (`until`), never on time: each wait has an upper bound only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

WAIT = 10.0  # an upper bound only


@dataclass(frozen=True)
class Hit:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered (0: it never did)

    @property
    def doc(self) -> Any:
        return json.loads(self.body)

    @property
    def seq(self) -> int:
        return int(self.headers["X-SignalOS-Seq"])


class Receiver:
    def __init__(self, *, fail_first: int = 0, hang: bool = False) -> None:
        self.fail_first = fail_first  # may be changed while running
        self.hang = hang
        self.hits: list[Hit] = []
        self._release = asyncio.Event()
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def accepted(self) -> list[Hit]:
        return [h for h in self.hits if 200 <= h.status < 300]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        hang = self.hang
        failing = len(self.hits) < self.fail_first
        status = 0 if hang else 500 if failing else 200
        self.hits.append(
            Hit(request.path, dict(request.query), dict(request.headers), body, status)
        )
        self._changed.set()
        if hang:
            await self._release.wait()  # accepted, read, never answered (until close)
            raise asyncio.CancelledError
        return web.Response(status=status, text="no" if failing else "ok")

    async def until(self, condition: Callable[[], bool], within: float = WAIT) -> None:
        async with asyncio.timeout(within):
            while not condition():
                self._changed.clear()
                await self._changed.wait()
